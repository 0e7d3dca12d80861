// Hands finished spans to an exporter in batches, from a background thread,
// so that ending a span costs a request one short lock and never an export.
// The queue is bounded: when it is full the span is dropped and counted
// (tracing must never slow down or block serving).
//
//   TIERMESH_ASSIGN_OR_RETURN(std::shared_ptr<BatchSpanProcessor> processor,
//                             BatchSpanProcessor::Create(std::move(exporter), {}));
//   TracerOptions options;
//   options.processor = processor;
//   ...
//   (void)processor->Shutdown(absl::Seconds(5));   // on SIGTERM: flush what is left
//
// The thread exports a batch when max_export_batch_size spans are queued, or
// schedule_delay after it last woke up, or on ForceFlush/Shutdown. Failed
// batches are dropped and counted, not retried: the next batch may do better,
// and memory stays bounded. Shutdown exports until the queue is empty or the
// deadline passes (what is left is counted as dropped); an export already
// running when the deadline passes is waited for, so Shutdown returns within
// the deadline plus the exporter's own timeout.
#ifndef TIERMESH_SERVICES_COMMON_TRACING_BATCH_SPAN_PROCESSOR_H_
#define TIERMESH_SERVICES_COMMON_TRACING_BATCH_SPAN_PROCESSOR_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "services/common/logging/logger.h"
#include "services/common/tracing/exporter.h"

namespace tiermesh::tracing {

struct BatchSpanProcessorOptions {
  size_t max_queue_size = 2048;
  size_t max_export_batch_size = 512;
  absl::Duration schedule_delay = absl::Seconds(5);
  // Export failures are logged when exporting starts failing and when it
  // recovers, not once per batch.
  logging::Logger logger = logging::Logger::Discard();
};

class BatchSpanProcessor final : public SpanProcessor {
 public:
  // Validates the options (sizes >= 1, batch <= queue, delay > 0) and starts
  // the export thread.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<BatchSpanProcessor>> Create(
      std::unique_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options);

  // Shuts down with a short deadline when Shutdown was not called.
  ~BatchSpanProcessor() override;
  BatchSpanProcessor(const BatchSpanProcessor&) = delete;
  BatchSpanProcessor& operator=(const BatchSpanProcessor&) = delete;

  void OnEnd(SpanData span) override;
  [[nodiscard]] absl::Status ForceFlush(absl::Duration timeout) override;
  [[nodiscard]] absl::Status Shutdown(absl::Duration timeout) override;
  SpanProcessorStats Stats() const override;

 private:
  BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options);
  void Run();
  bool ShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReportExport(const absl::Status& status, size_t spans);

  const std::unique_ptr<SpanExporter> exporter_;
  const BatchSpanProcessorOptions options_;

  mutable absl::Mutex mu_;
  absl::CondVar wake_cv_;  // the export thread waits here
  absl::CondVar done_cv_;  // ForceFlush waits here
  std::deque<SpanData> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time shutdown_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // Spans taken off the queue and finished with (exported, failed or
  // dropped at shutdown); ForceFlush waits until it reaches the number
  // enqueued when it was called (the queue is FIFO).
  uint64_t spans_done_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flush_target_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t left_at_shutdown_ ABSL_GUARDED_BY(mu_) = 0;  // queued when the thread stopped
  SpanProcessorStats stats_ ABSL_GUARDED_BY(mu_);

  bool export_failing_ = false;  // export thread only

  absl::Mutex join_mu_;  // serialises Shutdown callers around the join
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_BATCH_SPAN_PROCESSOR_H_
