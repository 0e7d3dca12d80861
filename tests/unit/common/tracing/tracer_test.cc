#include "services/common/tracing/tracer.h"

#include <array>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/logging/logger.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::tracing {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::tiermesh::tracing::testing::CapturingProcessor;
using ::tiermesh::tracing::testing::FakeClock;
using ::tiermesh::tracing::testing::SequentialIdGenerator;

// A trace id whose low 56 bits are `low56`.
TraceId TraceWithLow56(uint64_t low56) {
  std::array<uint8_t, 16> bytes{};
  bytes[0] = 0xff;  // the high bits must not matter
  for (int i = 0; i < 7; ++i) bytes[15 - i] = static_cast<uint8_t>(low56 >> (8 * i));
  return TraceId(bytes);
}

SpanContext Parent(bool sampled) {
  SpanContext parent;
  parent.trace_id = TraceWithLow56(1);
  parent.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  parent.trace_flags = sampled ? kSampledFlag : 0;
  parent.is_remote = true;
  return parent;
}

TEST(ShouldSample, Table) {
  constexpr uint64_t kMax56 = (uint64_t{1} << 56) - 1;
  constexpr uint64_t kHalf = uint64_t{1} << 55;
  struct Case {
    SamplerConfig sampler;
    SpanContext parent;
    uint64_t low56;
    bool want;
  };
  const Case cases[] = {
      // Roots: the ratio decides, on the low 56 bits.
      {{true, 1.0}, {}, kMax56, true},
      {{true, 0.0}, {}, 0, false},
      {{true, 0.5}, {}, kHalf - 1, true},
      {{true, 0.5}, {}, kHalf, false},
      {{false, 0.25}, {}, kHalf / 2 - 1, true},
      {{false, 0.25}, {}, kHalf / 2, false},
      // Parent-based: the parent's decision wins, whatever the ratio.
      {{true, 0.0}, Parent(true), kMax56, true},
      {{true, 1.0}, Parent(false), 0, false},
      // Not parent-based: the ratio decides even under a parent.
      {{false, 1.0}, Parent(false), 0, true},
      {{false, 0.0}, Parent(true), 0, false},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    EXPECT_EQ(ShouldSample(c.sampler, c.parent, TraceWithLow56(c.low56)), c.want) << "case " << i;
  }
}

TEST(ShouldSample, RatioIsRoughlyRight) {
  RandomIdGenerator ids;
  int sampled = 0;
  for (int i = 0; i < 10000; ++i) sampled += ShouldSample({true, 0.1}, {}, ids.NewTraceId());
  EXPECT_GT(sampled, 800);  // 1000 expected; bounds are > 6 sigma away
  EXPECT_LT(sampled, 1200);
}

struct Harness {
  FakeClock clock;
  std::shared_ptr<CapturingProcessor> processor = std::make_shared<CapturingProcessor>();
  Tracer tracer;

  explicit Harness(SamplerConfig sampler = {}, SpanLimits limits = {})
      : tracer(Options(sampler, limits)) {}

  TracerOptions Options(SamplerConfig sampler, SpanLimits limits) {
    TracerOptions options;
    options.sampler = sampler;
    options.processor = processor;
    options.id_generator = std::make_shared<SequentialIdGenerator>();
    options.clock = clock.AsFunction();
    options.limits = limits;
    return options;
  }
};

TEST(Tracer, RecordsRootAndChildSpans) {
  Harness h;
  {
    Span root = h.tracer.StartSpan("root", SpanKind::kServer);
    EXPECT_TRUE(root.IsRecording());
    EXPECT_TRUE(root.context().sampled());
    EXPECT_EQ(root.context().trace_id.ToHex(), "aa000000000000000000000000000001");
    EXPECT_EQ(root.context().span_id.ToHex(), "0000000000000001");
    h.clock.Advance(absl::Milliseconds(5));
    Span child = h.tracer.StartSpan("child", SpanKind::kClient, root);
    EXPECT_EQ(child.context().trace_id, root.context().trace_id);
    child.SetAttribute("tiermesh.tier", "small");
    child.SetAttribute("attempt", 2);
    child.SetAttribute("cost_usd", 0.25);
    child.SetAttribute("fallback", false);
    child.SetAttribute("attempt", 3);  // replaces
    child.AddEvent("first_token", {{"ttft_ms", 120}});
    h.clock.Advance(absl::Milliseconds(10));
    child.RecordStatus(absl::UnavailableError("backend down"));
    child.End();
    child.End();  // idempotent
    EXPECT_FALSE(child.IsRecording());
    child.SetAttribute("late", 1);  // ignored after End
    h.clock.Advance(absl::Milliseconds(1));
  }  // root ends here
  const std::vector<SpanData> spans = h.processor->Spans();
  ASSERT_EQ(spans.size(), 2u);
  const SpanData& child = spans[0];
  const SpanData& root = spans[1];
  EXPECT_EQ(root.name, "root");
  EXPECT_EQ(root.kind, SpanKind::kServer);
  EXPECT_FALSE(root.parent_span_id.IsValid());
  EXPECT_EQ(root.end_time - root.start_time, absl::Milliseconds(16));
  EXPECT_EQ(child.name, "child");
  EXPECT_EQ(child.kind, SpanKind::kClient);
  EXPECT_EQ(child.parent_span_id, root.context.span_id);
  EXPECT_EQ(child.end_time - child.start_time, absl::Milliseconds(10));
  EXPECT_THAT(child.attributes, ElementsAre(Pair("tiermesh.tier", AttributeValue("small")),
                                            Pair("attempt", AttributeValue(3)),
                                            Pair("cost_usd", AttributeValue(0.25)),
                                            Pair("fallback", AttributeValue(false))));
  ASSERT_EQ(child.events.size(), 1u);
  EXPECT_EQ(child.events[0].name, "first_token");
  EXPECT_EQ(child.events[0].time - child.start_time, absl::Milliseconds(0));
  EXPECT_EQ(child.status_code, SpanStatusCode::kError);
  EXPECT_EQ(child.status_message, "UNAVAILABLE: backend down");
  EXPECT_EQ(h.tracer.Stats().spans_started, 2u);
}

TEST(Tracer, ContinuesARemoteParentAndItsTracestate) {
  Harness h;
  SpanContext parent = Parent(true);
  parent.trace_state = "congo=t61rcWkgMzE";
  Span span = h.tracer.StartSpan("server", SpanKind::kServer, parent);
  EXPECT_EQ(span.context().trace_id, parent.trace_id);
  EXPECT_NE(span.context().span_id, parent.span_id);
  EXPECT_EQ(span.context().trace_state, "congo=t61rcWkgMzE");
  EXPECT_FALSE(span.context().is_remote);
  span.End();
  ASSERT_EQ(h.processor->Spans().size(), 1u);
  EXPECT_EQ(h.processor->Spans()[0].parent_span_id, parent.span_id);
}

TEST(Tracer, UnsampledSpansPropagateButRecordNothing) {
  Harness h(SamplerConfig{true, 0.0});
  Span root = h.tracer.StartSpan("root", SpanKind::kServer);
  EXPECT_FALSE(root.IsRecording());
  EXPECT_TRUE(root.context().IsValid());
  EXPECT_FALSE(root.context().sampled());
  root.SetAttribute("k", "v");
  root.End();
  // An unsampled parent is followed even with ratio 1.
  Harness g(SamplerConfig{true, 1.0});
  Span child = g.tracer.StartSpan("child", SpanKind::kClient, Parent(false));
  EXPECT_FALSE(child.context().sampled());
  child.End();
  EXPECT_TRUE(h.processor->Spans().empty());
  EXPECT_TRUE(g.processor->Spans().empty());
  EXPECT_EQ(h.tracer.Stats().spans_not_sampled, 1u);
}

TEST(Tracer, NoopTracerPassesTheParentThrough) {
  const Tracer tracer = Tracer::Noop();
  EXPECT_FALSE(tracer.enabled());
  Span root = tracer.StartSpan("root", SpanKind::kServer);
  EXPECT_FALSE(root.IsRecording());
  EXPECT_FALSE(root.context().IsValid());  // nothing to propagate
  const SpanContext parent = Parent(true);
  Span child = tracer.StartSpan("child", SpanKind::kServer, parent);
  EXPECT_EQ(child.context().trace_id, parent.trace_id);
  EXPECT_EQ(child.context().span_id, parent.span_id);
  EXPECT_TRUE(child.context().sampled());
  EXPECT_OK(tracer.Shutdown(absl::Seconds(1)));
  EXPECT_FALSE(tracer.Stats().enabled);
}

TEST(Tracer, LimitsDropAndCount) {
  SpanLimits limits;
  limits.max_attributes = 2;
  limits.max_events = 1;
  limits.max_string_length = 5;
  Harness h({}, limits);
  {
    Span span = h.tracer.StartSpan("s", SpanKind::kInternal);
    span.SetAttribute("a", "1234567890");
    span.SetAttribute("b", std::string("\xC3\xA9\xC3\xA9\xC3\xA9"));  // 6 bytes: cut at 4
    span.SetAttribute("c", 3);
    span.SetAttribute("a", "x");  // replacing is not adding
    span.AddEvent("e1");
    span.AddEvent("e2");
  }
  const SpanData span = h.processor->Spans().at(0);
  EXPECT_THAT(span.attributes, ElementsAre(Pair("a", AttributeValue("x")),
                                           Pair("b", AttributeValue("\xC3\xA9\xC3\xA9"))));
  EXPECT_EQ(span.dropped_attributes, 1u);
  EXPECT_EQ(span.events.size(), 1u);
  EXPECT_EQ(span.dropped_events, 1u);
}

TEST(Tracer, SecretsNeverReachSpans) {
  Harness h;
  {
    Span span = h.tracer.StartSpan("s", SpanKind::kClient);
    span.SetAttribute("api_key", "sk-live-abcdef");
    span.SetAttribute("http.request.header.authorization", "Bearer abc");
    span.SetAttribute("upstream.error", "Incorrect API key provided: sk-abcdefghijklmnopqrstuvwx");
    span.AddEvent("retry", {{"x-api-key", "k"}});
    span.SetStatus(SpanStatusCode::kError, "401: Bearer tok123");
  }
  const SpanData span = h.processor->Spans().at(0);
  EXPECT_THAT(span.attributes,
              ElementsAre(Pair("api_key", AttributeValue("[REDACTED]")),
                          Pair("http.request.header.authorization", AttributeValue("[REDACTED]")),
                          Pair("upstream.error",
                               AttributeValue("Incorrect API key provided: sk-[REDACTED]"))));
  EXPECT_THAT(span.events.at(0).attributes,
              ElementsAre(Pair("x-api-key", AttributeValue("[REDACTED]"))));
  EXPECT_EQ(span.status_message, "401: Bearer [REDACTED]");
}

TEST(Tracer, OkStatusHasNoMessage) {
  Harness h;
  {
    Span span = h.tracer.StartSpan("s", SpanKind::kInternal);
    span.SetStatus(SpanStatusCode::kOk, "ignored");
  }
  EXPECT_EQ(h.processor->Spans().at(0).status_code, SpanStatusCode::kOk);
  EXPECT_EQ(h.processor->Spans().at(0).status_message, "");
}

TEST(Span, MoveAssignmentEndsTheReplacedSpan) {
  Harness h;
  Span span = h.tracer.StartSpan("first", SpanKind::kInternal);
  span = h.tracer.StartSpan("second", SpanKind::kInternal);
  ASSERT_EQ(h.processor->Spans().size(), 1u);
  EXPECT_EQ(h.processor->Spans()[0].name, "first");
  Span moved = std::move(span);
  moved.End();
  ASSERT_EQ(h.processor->Spans().size(), 2u);
  EXPECT_EQ(h.processor->Spans()[1].name, "second");
  Span empty;  // default: records nothing, ends quietly
  EXPECT_FALSE(empty.IsRecording());
}

TEST(Span, ActivatePutsIdsOnLogLines) {
  Harness h;
  auto sink = std::make_shared<logging::MemorySink>();
  logging::LoggerOptions options;
  options.service = "router";
  options.sink = sink;
  const logging::Logger logger(std::move(options));
  Span span = h.tracer.StartSpan("s", SpanKind::kServer);
  {
    auto scope = span.Activate();
    logger.Info("inside");
    {
      auto none = Span().Activate();  // an invalid context hides the outer ids
      logger.Info("no trace");
    }
    logger.Info("inside again");
  }
  logger.Info("outside");
  const std::vector<std::string> lines = sink->Lines();
  ASSERT_EQ(lines.size(), 4u);
  const auto line0 = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(line0["trace_id"], span.context().trace_id.ToHex());
  EXPECT_EQ(line0["span_id"], span.context().span_id.ToHex());
  EXPECT_FALSE(nlohmann::json::parse(lines[1]).contains("trace_id"));
  EXPECT_EQ(nlohmann::json::parse(lines[2])["span_id"], span.context().span_id.ToHex());
  EXPECT_FALSE(nlohmann::json::parse(lines[3]).contains("trace_id"));
}

TEST(Span, ConcurrentAttributeWritesAreSafe) {
  Harness h;
  {
    Span span = h.tracer.StartSpan("stream", SpanKind::kServer);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&span, t] {
        for (int i = 0; i < 500; ++i) {
          span.SetAttribute("t" + std::to_string(t), i);
          span.AddEvent("chunk");
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  const SpanData span = h.processor->Spans().at(0);
  EXPECT_EQ(span.attributes.size(), 4u);
  EXPECT_EQ(span.events.size() + span.dropped_events, 2000u);
}

TEST(RandomIdGenerator, IdsAreValidAndDistinct) {
  RandomIdGenerator ids;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const TraceId t = ids.NewTraceId();
    const SpanId s = ids.NewSpanId();
    EXPECT_TRUE(t.IsValid());
    EXPECT_TRUE(s.IsValid());
    seen.insert(t.ToHex());
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace tiermesh::tracing
