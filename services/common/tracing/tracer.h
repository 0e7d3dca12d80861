// Spans and the Tracer that starts them. A Tracer is a cheap, copyable
// handle (like logging::Logger) that main builds once (tracing_config.h) and
// passes to what needs it; Tracer::Noop() is the disabled one.
//
//   // server side: continue the caller's trace (propagation.h has helpers)
//   tracing::Span span = tracer.StartSpan("tiermesh.v1.RouterService/Chat",
//                                         tracing::SpanKind::kServer, extracted_parent);
//   auto log_scope = span.Activate();        // log lines on this thread carry the ids
//   span.SetAttribute("tiermesh.tier", "small");
//   tracing::Span attempt = tracer.StartSpan("backend attempt", tracing::SpanKind::kClient, span);
//   ...
//   attempt.RecordStatus(status);            // error status + message when !ok()
//   attempt.End();                           // or let the destructor end it
//
// Sampling is parent-based: a sampled parent is always followed, an unsampled
// one never; a root is sampled when the low 56 bits of its trace id fall
// below ratio * 2^56, so every service makes the same choice for a trace id.
// An unsampled span still gets ids and propagates (with the sampled flag
// off) but records nothing. A disabled tracer creates no ids at all: its
// spans carry the parent's context unchanged, so a trace passes through a
// service that does not export.
#ifndef TIERMESH_SERVICES_COMMON_TRACING_TRACER_H_
#define TIERMESH_SERVICES_COMMON_TRACING_TRACER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "services/common/logging/trace_context.h"
#include "services/common/tracing/exporter.h"
#include "services/common/tracing/id_generator.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/span_data.h"

namespace tiermesh::tracing {

// Bounds on what one span may hold; what is over is dropped and counted in
// SpanData::dropped_attributes / dropped_events, long strings are truncated.
struct SpanLimits {
  size_t max_attributes = 128;
  size_t max_events = 128;
  size_t max_string_length = 4096;
};

// A span being recorded. Move-only; ending is idempotent and the destructor
// ends a span that was not ended. Thread-safe: a streaming handler may touch
// it from several threads. A default-constructed Span records nothing and
// has an invalid context.
class Span {
 public:
  Span();
  ~Span();
  Span(Span&& other) noexcept;
  Span& operator=(Span&& other) noexcept;  // ends the span it replaces
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  // What children and outgoing calls propagate.
  const SpanContext& context() const { return context_; }
  // False for unsampled, disabled and ended spans: setters do nothing.
  bool IsRecording() const;

  // Sets (or replaces) an attribute. Values of sensitive keys are replaced by
  // "[REDACTED]" and string values go through RedactSecrets, as in logs.
  void SetAttribute(absl::string_view key, AttributeValue value);
  void AddEvent(absl::string_view name, Attributes attributes = {});
  // kError keeps `message` (redacted); kOk and kUnset drop it (OTel rule).
  void SetStatus(SpanStatusCode code, absl::string_view message = "");
  // kOk for an OK status, else kError with "CODE: message".
  void RecordStatus(const absl::Status& status);
  void End();

  // Installs this span's ids as the thread's current log ids until the
  // returned object dies (no ids for an invalid context).
  [[nodiscard]] logging::ScopedTraceIds Activate() const;

 private:
  friend class Tracer;
  struct Recording;
  Span(SpanContext context, std::unique_ptr<Recording> recording);

  SpanContext context_;
  std::unique_ptr<Recording> recording_;
};

struct SamplerConfig {
  // Follow a valid parent's sampled flag; otherwise (or for roots) use ratio.
  bool parent_based = true;
  // Share of root traces sampled, 0..1.
  double ratio = 1.0;
};

// The sampling decision for a new span (pure; see the header comment).
[[nodiscard]] bool ShouldSample(const SamplerConfig& sampler, const SpanContext& parent,
                                const TraceId& trace_id);

struct TracerOptions {
  SamplerConfig sampler;
  // Receives finished sampled spans; null: sampled spans are not recorded.
  std::shared_ptr<SpanProcessor> processor;
  // Default: a RandomIdGenerator.
  std::shared_ptr<IdGenerator> id_generator;
  // Default: absl::Now.
  std::function<absl::Time()> clock;
  SpanLimits limits;
};

struct TracerStats {
  bool enabled = false;
  uint64_t spans_started = 0;      // recording spans started
  uint64_t spans_not_sampled = 0;  // spans the sampler left out
  SpanProcessorStats processor;    // zeros without a processor
};

class Tracer {
 public:
  // The disabled tracer: no ids, no threads, nothing recorded.
  static Tracer Noop() { return Tracer(); }
  explicit Tracer(TracerOptions options);

  bool enabled() const { return state_ != nullptr; }

  // A span that is a child of `parent`, or a new root when `parent` is
  // invalid (no incoming context).
  [[nodiscard]] Span StartSpan(absl::string_view name, SpanKind kind,
                               const SpanContext& parent = SpanContext()) const;
  [[nodiscard]] Span StartSpan(absl::string_view name, SpanKind kind, const Span& parent) const {
    return StartSpan(name, kind, parent.context());
  }

  TracerStats Stats() const;
  [[nodiscard]] absl::Status ForceFlush(absl::Duration timeout) const;
  // Flushes and stops the processor (shared by every copy of this tracer).
  [[nodiscard]] absl::Status Shutdown(absl::Duration timeout) const;

 private:
  struct State;
  Tracer() = default;
  std::shared_ptr<State> state_;  // null: disabled
};

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_TRACER_H_
