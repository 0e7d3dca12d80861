#include "services/common/status/status.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  TIERMESH_ASSIGN_OR_RETURN(int h, Half(x));
  TIERMESH_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status CheckEven(int x) {
  TIERMESH_RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacros, PropagateFirstError) {
  EXPECT_THAT(Quarter(8), IsOk());
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("odd")));
  EXPECT_THAT(CheckEven(3), StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
  EXPECT_THAT(CheckEven(4), IsOk());
}

TEST(StatusMapping, EveryCodeRoundTrips) {
  for (int c = 0; c <= 16; ++c) {
    auto code = static_cast<absl::StatusCode>(c);
    absl::Status s = code == absl::StatusCode::kOk ? absl::OkStatus() : absl::Status(code, "msg");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    absl::Status back = FromGrpcStatus(g);
    EXPECT_EQ(back.code(), code);
    if (c != 0) {
      EXPECT_EQ(g.error_message(), "msg");
      if (c != 2) {
        EXPECT_NE(CodeName(code), "UNKNOWN") << c;
      }
    }
  }
  EXPECT_EQ(CodeName(absl::StatusCode::kUnknown), "UNKNOWN");
  EXPECT_EQ(CodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
}

TEST(StatusReason, AttachedAndReadBack) {
  absl::Status s = WithReason(absl::OutOfRangeError("too long"), "context_length_exceeded");
  EXPECT_EQ(ErrorReason(s), "context_length_exceeded");
  EXPECT_EQ(ErrorReason(absl::InternalError("x")), "");
  EXPECT_THAT(WithReason(absl::OkStatus(), "ignored"), IsOk());
}

}  // namespace
}  // namespace tiermesh
