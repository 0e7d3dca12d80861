#include "services/router/failure.h"

namespace tiermesh::router {
namespace {

FailureClass Fallback(absl::string_view label, bool breaker) {
  FailureClass f;
  f.fallback = true;
  f.counts_for_breaker = breaker;
  f.label = std::string(label);
  return f;
}

FailureClass Stop(absl::string_view label) {
  FailureClass f;
  f.label = std::string(label);
  return f;
}

}  // namespace

FailureClass ClassifyFailure(absl::StatusCode code, absl::string_view reason) {
  if (code == absl::StatusCode::kOk) return FailureClass{};
  // Refused content is refused everywhere; the reason outranks the code.
  if (reason == kReasonContentPolicy) return Stop("content_policy");
  if (code == absl::StatusCode::kOutOfRange || reason == kReasonContextLengthExceeded) {
    FailureClass f = Fallback("context_length", /*breaker=*/false);
    f.larger_context = true;
    return f;
  }
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return Fallback("unavailable", /*breaker=*/true);
    case absl::StatusCode::kResourceExhausted:
      // Saturation is load, not ill health: spill over without opening the
      // breaker (endpoint choice already steers away from busy replicas).
      return Fallback("saturated", /*breaker=*/false);
    case absl::StatusCode::kDeadlineExceeded:
      return Fallback("deadline", /*breaker=*/true);
    case absl::StatusCode::kAborted:
      return Fallback("aborted", /*breaker=*/false);
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return Fallback("internal", /*breaker=*/true);
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnimplemented:
      return Fallback("misconfigured", /*breaker=*/true);
    case absl::StatusCode::kInvalidArgument:
      return Stop("invalid_argument");
    case absl::StatusCode::kUnauthenticated:
      return Stop("unauthenticated");
    case absl::StatusCode::kPermissionDenied:
      return Stop("permission_denied");
    case absl::StatusCode::kFailedPrecondition:
      return Stop("failed_precondition");
    case absl::StatusCode::kCancelled:
      return Stop("cancelled");
    case absl::StatusCode::kAlreadyExists:
      return Stop("already_exists");
    default:
      break;
  }
  // A code outside the canonical space: treat as a backend error.
  return Fallback("internal", /*breaker=*/true);
}

}  // namespace tiermesh::router
