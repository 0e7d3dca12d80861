#include "services/router/failure.h"

#include "gtest/gtest.h"

namespace tiermesh::router {
namespace {

TEST(ClassifyFailureTest, Table) {
  struct Case {
    absl::StatusCode code;
    const char* reason;
    bool fallback;
    bool larger_context;
    bool breaker;
    const char* label;
  };
  using C = absl::StatusCode;
  const Case cases[] = {
      {C::kOk, "", false, false, false, ""},
      {C::kUnavailable, "", true, false, true, "unavailable"},
      {C::kResourceExhausted, "", true, false, false, "saturated"},
      {C::kResourceExhausted, "rate_limited", true, false, false, "saturated"},
      {C::kDeadlineExceeded, "", true, false, true, "deadline"},
      {C::kOutOfRange, "", true, true, false, "context_length"},
      {C::kOutOfRange, "context_length_exceeded", true, true, false, "context_length"},
      // The reason decides even when a backend picked another code.
      {C::kInvalidArgument, "context_length_exceeded", true, true, false, "context_length"},
      {C::kAborted, "", true, false, false, "aborted"},
      {C::kInternal, "", true, false, true, "internal"},
      {C::kUnknown, "", true, false, true, "internal"},
      {C::kDataLoss, "", true, false, true, "internal"},
      {C::kNotFound, "", true, false, true, "misconfigured"},
      {C::kUnimplemented, "", true, false, true, "misconfigured"},
      // Never retried: another backend would answer the same, at a cost.
      {C::kInvalidArgument, "", false, false, false, "invalid_argument"},
      {C::kUnauthenticated, "", false, false, false, "unauthenticated"},
      {C::kPermissionDenied, "", false, false, false, "permission_denied"},
      {C::kFailedPrecondition, "content_policy", false, false, false, "content_policy"},
      {C::kUnavailable, "content_policy", false, false, false, "content_policy"},
      {C::kFailedPrecondition, "", false, false, false, "failed_precondition"},
      {C::kCancelled, "", false, false, false, "cancelled"},
      {C::kAlreadyExists, "", false, false, false, "already_exists"},
      {static_cast<C>(99), "", true, false, true, "internal"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message()
                 << "code " << static_cast<int>(c.code) << " reason '" << c.reason << "'");
    const FailureClass f = ClassifyFailure(c.code, c.reason);
    EXPECT_EQ(f.fallback, c.fallback);
    EXPECT_EQ(f.larger_context, c.larger_context);
    EXPECT_EQ(f.counts_for_breaker, c.breaker);
    EXPECT_EQ(f.label, c.label);
  }
}

}  // namespace
}  // namespace tiermesh::router
