// What a failed backend attempt means for the rest of the request: fall back
// to the next candidate or stop, and whether the failure says something about
// the backend's health (feeds its circuit breaker). The router is the only
// component that retries, so this one table decides every retry in the mesh.
//
//   FailureClass f = ClassifyFailure(absl::StatusCode::kResourceExhausted, "");
//   f.fallback;        // true: local saturated, spill over to the next tier
//   f.label;           // "saturated" (Attempt.fallback_reason, metric label)
//   f.larger_context;  // false; true for OUT_OF_RANGE / context_length_exceeded
//
// The table (error reasons come from the "x-tiermesh-error-reason" trailer):
//   UNAVAILABLE                        fall back  "unavailable"      breaker
//   RESOURCE_EXHAUSTED                 fall back  "saturated"        (load, not health)
//   DEADLINE_EXCEEDED                  fall back  "deadline"         breaker
//   OUT_OF_RANGE, context_length_exceeded
//                                      fall back to a larger window  "context_length"
//   ABORTED                            fall back  "aborted"          (e.g. a model swap)
//   INTERNAL, UNKNOWN, DATA_LOSS       fall back  "internal"         breaker
//   NOT_FOUND, UNIMPLEMENTED           fall back  "misconfigured"    breaker
//   content_policy (any code)          stop       "content_policy"
//   INVALID_ARGUMENT                   stop       "invalid_argument"
//   UNAUTHENTICATED                    stop       "unauthenticated"
//   PERMISSION_DENIED                  stop       "permission_denied"
//   FAILED_PRECONDITION                stop       "failed_precondition"
//   CANCELLED                          stop       "cancelled"  (the caller gave up)
//   ALREADY_EXISTS                     stop       "already_exists"
//   OK                                 not a failure (label "")
// Requests that must never retry are the caller's problem (a bad request, a
// refused key, refused content): another backend would answer the same, and
// retrying only multiplies cost.
#ifndef TIERMESH_SERVICES_ROUTER_FAILURE_H_
#define TIERMESH_SERVICES_ROUTER_FAILURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tiermesh::router {

inline constexpr absl::string_view kReasonContextLengthExceeded = "context_length_exceeded";
inline constexpr absl::string_view kReasonContentPolicy = "content_policy";

struct FailureClass {
  // Try the next eligible candidate.
  bool fallback = false;
  // The next candidate must have a larger context window than this backend.
  bool larger_context = false;
  // Counts as a failure for the backend's circuit breaker.
  bool counts_for_breaker = false;
  // Short label: Attempt.fallback_reason and the fallbacks metric's reason.
  std::string label;
};

// `code` is the canonical code (absl and gRPC share it); `reason` the
// backend's error reason, "" when none.
FailureClass ClassifyFailure(absl::StatusCode code, absl::string_view reason);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_FAILURE_H_
