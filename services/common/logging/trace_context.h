// The trace ids that log lines carry, as a tiny thread-local "current trace
// context". It lives in logging so that logging needs nothing from tracing:
// tracing depends on logging and installs the ids of an active span here; a
// Logger reads them when it writes a line.
//
//   {
//     tiermesh::logging::ScopedTraceIds ids(span_trace_id_hex, span_id_hex);
//     logger.Info("calling backend");   // the line carries trace_id and span_id
//   }                                   // previous ids (or none) restored here
//
// tracing::Span::Activate() returns one of these. Code that hops threads (gRPC
// callback reactors) should bind the ids explicitly instead, with
// Logger::WithTraceIds(), because a thread-local does not follow a callback.
#ifndef TIERMESH_SERVICES_COMMON_LOGGING_TRACE_CONTEXT_H_
#define TIERMESH_SERVICES_COMMON_LOGGING_TRACE_CONTEXT_H_

#include <string>

namespace tiermesh::logging {

// Lower-case hex ids as they appear in `traceparent` (32 and 16 characters).
struct TraceIds {
  std::string trace_id;
  std::string span_id;
};

// The innermost ids installed on the calling thread, or nullptr when none.
const TraceIds* CurrentTraceIds();

// Installs ids on the calling thread for its lifetime (scopes nest); an empty
// trace_id installs "no trace" (hiding any outer ids). Must be
// destroyed on the thread that created it; it can be neither copied nor moved,
// but can be returned by value (C++17 guaranteed elision).
class ScopedTraceIds {
 public:
  ScopedTraceIds(std::string trace_id, std::string span_id);
  ~ScopedTraceIds();
  ScopedTraceIds(const ScopedTraceIds&) = delete;
  ScopedTraceIds& operator=(const ScopedTraceIds&) = delete;

 private:
  TraceIds ids_;
  const TraceIds* previous_;
};

}  // namespace tiermesh::logging

#endif  // TIERMESH_SERVICES_COMMON_LOGGING_TRACE_CONTEXT_H_
