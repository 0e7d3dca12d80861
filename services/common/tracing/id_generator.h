// Where new trace and span ids come from. Production uses RandomIdGenerator;
// tests inject a generator that returns known ids.
//
//   auto ids = std::make_shared<RandomIdGenerator>();
//   TraceId t = ids->NewTraceId();   // never the invalid all-zero id
#ifndef TIERMESH_SERVICES_COMMON_TRACING_ID_GENERATOR_H_
#define TIERMESH_SERVICES_COMMON_TRACING_ID_GENERATOR_H_

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"

#include "services/common/tracing/span_context.h"

namespace tiermesh::tracing {

// Implementations must be thread-safe and never return an invalid id.
class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  virtual TraceId NewTraceId() = 0;
  virtual SpanId NewSpanId() = 0;
};

// Random ids from a seeded absl::BitGen behind a mutex (cheap next to the
// work a span describes, and it keeps the generator an ordinary object).
class RandomIdGenerator final : public IdGenerator {
 public:
  TraceId NewTraceId() override;
  SpanId NewSpanId() override;

 private:
  absl::Mutex mu_;
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_ID_GENERATOR_H_
