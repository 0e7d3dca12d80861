#include "services/common/tracing/batch_span_processor.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/logging/logger.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::tracing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;
using ::tiermesh::tracing::testing::FakeExporter;

// Long enough that the timer never fires during a test that does not want it.
constexpr absl::Duration kNever = absl::Hours(1);
constexpr absl::Duration kBound = absl::Seconds(30);  // upper bound on waits, never reached

SpanData NamedSpan(const std::string& name) {
  SpanData span;
  span.name = name;
  return span;
}

struct Harness {
  FakeExporter* exporter = nullptr;  // owned by processor
  std::shared_ptr<BatchSpanProcessor> processor;

  explicit Harness(BatchSpanProcessorOptions options) {
    auto owned = std::make_unique<FakeExporter>();
    exporter = owned.get();
    auto created = BatchSpanProcessor::Create(std::move(owned), std::move(options));
    EXPECT_TRUE(created.ok()) << created.status();
    processor = *std::move(created);
  }
};

BatchSpanProcessorOptions Options(size_t queue, size_t batch, absl::Duration delay = kNever) {
  BatchSpanProcessorOptions options;
  options.max_queue_size = queue;
  options.max_export_batch_size = batch;
  options.schedule_delay = delay;
  return options;
}

TEST(BatchSpanProcessor, ExportsFullBatchesWithoutWaitingForTheTimer) {
  Harness h(Options(100, 3));
  for (int i = 0; i < 7; ++i) h.processor->OnEnd(NamedSpan("s" + std::to_string(i)));
  // Two full batches go at once; the seventh waits for the (1 h) timer.
  ASSERT_TRUE(h.exporter->WaitForSpans(6, kBound));
  EXPECT_THAT(h.exporter->Batches(), ElementsAre(3, 3));
  EXPECT_EQ(h.processor->Stats().queue_size, 1u);
  ASSERT_OK(h.processor->ForceFlush(kBound));
  EXPECT_THAT(h.exporter->Batches(), ElementsAre(3, 3, 1));
  EXPECT_THAT(h.exporter->Names(), ElementsAre("s0", "s1", "s2", "s3", "s4", "s5", "s6"));
  const SpanProcessorStats stats = h.processor->Stats();
  EXPECT_EQ(stats.spans_enqueued, 7u);
  EXPECT_EQ(stats.spans_exported, 7u);
  EXPECT_EQ(stats.export_batches, 3u);
  EXPECT_EQ(stats.spans_dropped(), 0u);
  EXPECT_EQ(stats.queue_size, 0u);
}

TEST(BatchSpanProcessor, ScheduleDelayExportsAPartialBatch) {
  Harness h(Options(100, 50, absl::Milliseconds(10)));
  h.processor->OnEnd(NamedSpan("lonely"));
  // No flush, no full batch: only the timer can send it.
  ASSERT_TRUE(h.exporter->WaitForSpans(1, kBound));
  EXPECT_THAT(h.exporter->Batches(), ElementsAre(1));
}

TEST(BatchSpanProcessor, FullQueueDropsAndCountsWithoutBlocking) {
  Harness h(Options(4, 2));
  h.exporter->Block();
  h.processor->OnEnd(NamedSpan("a"));
  h.processor->OnEnd(NamedSpan("b"));  // a full batch: the thread takes it and blocks
  ASSERT_TRUE(h.exporter->WaitUntilBlockedInExport(kBound));
  // The queue (4) refills while the exporter hangs; the rest is dropped, and
  // OnEnd returns at once every time.
  const absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) h.processor->OnEnd(NamedSpan("x"));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_LT(elapsed, absl::Seconds(5));  // a blocked OnEnd would hang here forever
  SpanProcessorStats stats = h.processor->Stats();
  EXPECT_EQ(stats.spans_enqueued, 6u);
  EXPECT_EQ(stats.spans_dropped_queue_full, 996u);
  EXPECT_EQ(stats.queue_size, 4u);
  h.exporter->Release();
  ASSERT_OK(h.processor->ForceFlush(kBound));
  stats = h.processor->Stats();
  EXPECT_EQ(stats.spans_exported, 6u);
  EXPECT_EQ(stats.spans_dropped_queue_full, 996u);
}

TEST(BatchSpanProcessor, FailedExportsAreDroppedAndCounted) {
  BatchSpanProcessorOptions options = Options(100, 2);
  auto sink = std::make_shared<logging::MemorySink>();
  logging::LoggerOptions log_options;
  log_options.service = "test";
  log_options.sink = sink;
  options.logger = logging::Logger(std::move(log_options));
  Harness h(std::move(options));
  h.exporter->Fail(true);
  for (int i = 0; i < 6; ++i) h.processor->OnEnd(NamedSpan("f"));
  ASSERT_OK(h.processor->ForceFlush(kBound));
  h.exporter->Fail(false);
  for (int i = 0; i < 2; ++i) h.processor->OnEnd(NamedSpan("ok"));
  ASSERT_OK(h.processor->ForceFlush(kBound));
  const SpanProcessorStats stats = h.processor->Stats();
  EXPECT_EQ(stats.export_failures, 3u);
  EXPECT_EQ(stats.spans_dropped_export_failed, 6u);
  EXPECT_EQ(stats.spans_exported, 2u);
  // One line when it starts failing, one when it recovers: not one per batch.
  const std::vector<std::string> lines = sink->Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("span export failing"));
  EXPECT_THAT(lines[0], HasSubstr("UNAVAILABLE: collector down"));
  EXPECT_THAT(lines[1], HasSubstr("span export recovered"));
}

TEST(BatchSpanProcessor, ShutdownFlushesEverythingQueued) {
  Harness h(Options(100, 10));
  for (int i = 0; i < 25; ++i) h.processor->OnEnd(NamedSpan("s"));
  ASSERT_OK(h.processor->Shutdown(kBound));
  EXPECT_EQ(h.processor->Stats().spans_exported, 25u);
  EXPECT_THAT(h.exporter->Batches(), ElementsAre(10, 10, 5));
  // After shutdown: dropped and counted, nothing exported, no error.
  h.processor->OnEnd(NamedSpan("late"));
  EXPECT_EQ(h.processor->Stats().spans_dropped_shutdown, 1u);
  EXPECT_OK(h.processor->Shutdown(kBound));  // idempotent
  EXPECT_EQ(h.processor->Stats().spans_exported, 25u);
}

TEST(BatchSpanProcessor, ShutdownDeadlineDropsWhatIsLeft) {
  Harness h(Options(100, 2));
  h.exporter->Block();
  for (int i = 0; i < 10; ++i) h.processor->OnEnd(NamedSpan("s"));
  ASSERT_TRUE(h.exporter->WaitUntilBlockedInExport(kBound));
  // Release the hung export only once Shutdown has begun (a span ended then
  // is dropped) and its 1 ms deadline has passed; what is still queued must
  // then be dropped, not exported.
  std::thread releaser([&] {
    while (h.processor->Stats().spans_dropped_shutdown == 0) {
      h.processor->OnEnd(NamedSpan("probe"));  // queued before Shutdown, dropped after
      absl::SleepFor(absl::Milliseconds(1));
    }
    const absl::Time seen = absl::Now();
    while (absl::Now() < seen + absl::Milliseconds(5)) absl::SleepFor(absl::Milliseconds(1));
    h.exporter->Release();
  });
  const absl::Status status = h.processor->Shutdown(absl::Milliseconds(1));
  releaser.join();
  const SpanProcessorStats stats = h.processor->Stats();
  EXPECT_EQ(stats.spans_exported, 2u);
  const uint64_t left = stats.spans_enqueued - 2;  // 8 plus the probes queued before Shutdown
  EXPECT_GE(left, 8u);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kDeadlineExceeded,
                               HasSubstr(std::to_string(left) + " spans dropped")));
  EXPECT_EQ(stats.spans_dropped_shutdown, left + 1);  // + the probe that saw the shutdown
}

TEST(BatchSpanProcessor, ForceFlushTimesOutWhileTheExporterHangs) {
  Harness h(Options(100, 50));
  h.exporter->Block();
  h.processor->OnEnd(NamedSpan("s"));
  EXPECT_THAT(h.processor->ForceFlush(absl::Milliseconds(20)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("1 spans still pending")));
  h.exporter->Release();
  EXPECT_OK(h.processor->ForceFlush(kBound));
}

TEST(BatchSpanProcessor, ManyThreadsEndSpansConcurrently) {
  Harness h(Options(100000, 64, absl::Milliseconds(5)));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) h.processor->OnEnd(NamedSpan("c"));
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_OK(h.processor->Shutdown(kBound));
  EXPECT_EQ(h.processor->Stats().spans_exported, 8000u);
  for (size_t batch : h.exporter->Batches()) EXPECT_LE(batch, 64u);
}

TEST(BatchSpanProcessor, RejectsBadOptions) {
  auto make = [](BatchSpanProcessorOptions options) {
    return BatchSpanProcessor::Create(std::make_unique<FakeExporter>(), std::move(options));
  };
  EXPECT_THAT(make(Options(0, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_queue_size")));
  EXPECT_THAT(make(Options(10, 0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_export_batch_size")));
  EXPECT_THAT(make(Options(10, 11)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_export_batch_size")));
  EXPECT_THAT(make(Options(10, 5, absl::ZeroDuration())),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("schedule_delay")));
  EXPECT_THAT(BatchSpanProcessor::Create(nullptr, Options(10, 5)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exporter")));
  // Defaults are the OpenTelemetry ones.
  const BatchSpanProcessorOptions defaults;
  EXPECT_EQ(defaults.max_queue_size, 2048u);
  EXPECT_EQ(defaults.max_export_batch_size, 512u);
  EXPECT_EQ(defaults.schedule_delay, absl::Seconds(5));
}

}  // namespace
}  // namespace tiermesh::tracing
