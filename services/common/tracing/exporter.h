// The two narrow interfaces behind a Tracer: a SpanProcessor receives each
// finished span (and must never block the request that ended it), a
// SpanExporter sends a batch somewhere. BatchSpanProcessor and
// OtlpHttpExporter are the implementations; tests use fakes. Keeping these
// two small is what lets opentelemetry-cpp replace this code later.
#ifndef TIERMESH_SERVICES_COMMON_TRACING_EXPORTER_H_
#define TIERMESH_SERVICES_COMMON_TRACING_EXPORTER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "services/common/tracing/span_data.h"

namespace tiermesh::tracing {

class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  // Sends one batch; called from one thread at a time. Must return within its
  // own timeout.
  [[nodiscard]] virtual absl::Status Export(const std::vector<SpanData>& spans) = 0;
};

// Counters for the metrics endpoint (monotonic except queue_size).
struct SpanProcessorStats {
  uint64_t spans_enqueued = 0;
  uint64_t spans_exported = 0;            // in batches the exporter accepted
  uint64_t spans_dropped_queue_full = 0;  // the queue was full when the span ended
  uint64_t spans_dropped_export_failed = 0;
  uint64_t spans_dropped_shutdown = 0;  // left at the shutdown deadline, or ended after it
  uint64_t export_batches = 0;
  uint64_t export_failures = 0;
  size_t queue_size = 0;

  uint64_t spans_dropped() const {
    return spans_dropped_queue_full + spans_dropped_export_failed + spans_dropped_shutdown;
  }
};

class SpanProcessor {
 public:
  virtual ~SpanProcessor() = default;
  // Takes a finished, sampled span. Thread-safe; must not block.
  virtual void OnEnd(SpanData span) = 0;
  // Exports what is queued now; DEADLINE_EXCEEDED if that takes longer.
  [[nodiscard]] virtual absl::Status ForceFlush(absl::Duration timeout) = 0;
  // Exports what is queued within `timeout`, then stops; later spans are
  // dropped. Idempotent.
  [[nodiscard]] virtual absl::Status Shutdown(absl::Duration timeout) = 0;
  virtual SpanProcessorStats Stats() const = 0;
};

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_EXPORTER_H_
