// GoogleMock matchers for absl::Status / StatusOr in tests:
//   EXPECT_THAT(Parse(x), tiermesh::testing::IsOk());
//   EXPECT_THAT(Parse(y), tiermesh::testing::StatusIs(
//       absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
//   ASSERT_OK_AND_ASSIGN(Config c, Parse(z));
#ifndef TIERMESH_SERVICES_COMMON_STATUS_STATUS_MATCHERS_H_
#define TIERMESH_SERVICES_COMMON_STATUS_STATUS_MATCHERS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tiermesh::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) { return s.status(); }

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::Matches(message_matcher)(std::string(s.message()));
}

}  // namespace tiermesh::testing

#define TIERMESH_MATCHERS_CONCAT_INNER_(a, b) a##b
#define TIERMESH_MATCHERS_CONCAT_(a, b) TIERMESH_MATCHERS_CONCAT_INNER_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                   \
  auto TIERMESH_MATCHERS_CONCAT_(statusor_, __LINE__) = (expr);           \
  ASSERT_TRUE(TIERMESH_MATCHERS_CONCAT_(statusor_, __LINE__).ok())        \
      << TIERMESH_MATCHERS_CONCAT_(statusor_, __LINE__).status();         \
  lhs = std::move(TIERMESH_MATCHERS_CONCAT_(statusor_, __LINE__)).value()
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::tiermesh::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT((expr), ::tiermesh::testing::IsOk())

#endif  // TIERMESH_SERVICES_COMMON_STATUS_STATUS_MATCHERS_H_
