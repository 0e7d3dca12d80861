#include "services/cloud_proxy/rate_limiter.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/cloud_proxy/errors.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

class FakeClock {
 public:
  absl::Time Now() const { return now_; }
  void Advance(absl::Duration d) { now_ += d; }
  RateLimiter::Clock AsClock() {
    return [this] { return now_; };
  }

 private:
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

// One scripted step: advance the clock, then try `tokens`.
struct Step {
  absl::Duration advance;
  int64_t tokens;
  bool admitted;
  absl::Duration retry_after;  // when rejected (InfiniteDuration: no retry-after)
};

struct LimiterCase {
  std::string name;
  RateLimits limits;
  std::vector<Step> steps;
};

class RateLimiterTest : public ::testing::TestWithParam<LimiterCase> {};

TEST_P(RateLimiterTest, Script) {
  FakeClock clock;
  RateLimiter limiter(GetParam().limits, clock.AsClock());
  int i = 0;
  for (const Step& step : GetParam().steps) {
    SCOPED_TRACE(i++);
    clock.Advance(step.advance);
    EXPECT_EQ(limiter.WouldAdmit(step.tokens), step.admitted);
    absl::Status s = limiter.TryAcquire(step.tokens);
    if (step.admitted) {
      EXPECT_THAT(s, IsOk());
      continue;
    }
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("limit")));
    EXPECT_EQ(ErrorReason(s), kReasonClientRateLimited);
    if (step.retry_after == absl::InfiniteDuration()) {
      EXPECT_FALSE(GetRetryAfter(s).has_value());
    } else {
      ASSERT_TRUE(GetRetryAfter(s).has_value());
      EXPECT_EQ(*GetRetryAfter(s), step.retry_after);
    }
  }
}

constexpr absl::Duration kZero = absl::ZeroDuration();

INSTANTIATE_TEST_SUITE_P(
    Table, RateLimiterTest,
    ::testing::Values(
        LimiterCase{
            "unlimited", {0, 0}, {{kZero, 1'000'000, true, kZero}, {kZero, 5, true, kZero}}},
        // 60 requests/min: a burst of 2 from a bucket of 2, then one per 30 s.
        LimiterCase{"requests_burst_then_refill",
                    {2, 0},
                    {{kZero, 0, true, kZero},
                     {kZero, 0, true, kZero},
                     {kZero, 0, false, absl::Seconds(30)},
                     {absl::Seconds(29), 0, false, absl::Seconds(1)},
                     {absl::Seconds(1), 0, true, kZero},
                     {kZero, 0, false, absl::Seconds(30)}}},
        // 600 tokens/min = 10 tokens/s.
        LimiterCase{"tokens",
                    {0, 600},
                    {{kZero, 500, true, kZero},
                     {kZero, 200, false, absl::Seconds(10)},
                     {absl::Seconds(10), 200, true, kZero},
                     {kZero, 1, false, absl::Milliseconds(100)}}},
        // A request larger than a minute's allowance never passes.
        LimiterCase{
            "too_big_for_bucket", {0, 100}, {{kZero, 101, false, absl::InfiniteDuration()}}},
        // Both limits: the longer wait wins and nothing is debited on reject.
        LimiterCase{"both_limits_longer_wait",
                    {60, 60},
                    {{kZero, 60, true, kZero},
                     {kZero, 30, false, absl::Seconds(30)},
                     {absl::Seconds(30), 30, true, kZero}}},
        // Idling for hours never overfills.
        LimiterCase{
            "refill_caps_at_capacity",
            {0, 100},
            {{absl::Hours(5), 100, true, kZero}, {kZero, 1, false, absl::Milliseconds(600)}}}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(RateLimiter, AdjustRefundsAndDebits) {
  FakeClock clock;
  RateLimiter limiter({0, 600}, clock.AsClock());
  ASSERT_THAT(limiter.TryAcquire(600), IsOk());  // reserved worst case
  EXPECT_FALSE(limiter.WouldAdmit(100));
  limiter.Adjust(-400);  // actually used 200
  EXPECT_TRUE(limiter.WouldAdmit(400));
  EXPECT_FALSE(limiter.WouldAdmit(401));
  limiter.Adjust(+1000);  // used far more than reserved: debt
  absl::Status s = limiter.TryAcquire(1);
  ASSERT_THAT(s, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("limit")));
  // Debt of 600 below zero plus 1 token at 10 tokens/s: 60.1 s.
  EXPECT_EQ(GetRetryAfter(s).value(), absl::Milliseconds(60100));
  limiter.Adjust(-1'000'000);  // refunds never exceed the capacity
  EXPECT_TRUE(limiter.WouldAdmit(600));
  EXPECT_FALSE(limiter.WouldAdmit(601));
}

TEST(RateLimiter, NegativeReservationIsInvalid) {
  FakeClock clock;
  RateLimiter limiter({1, 1}, clock.AsClock());
  EXPECT_THAT(limiter.TryAcquire(-1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
}

TEST(TokenBucket, ClockSteppingBackNeverRemovesTokens) {
  const absl::Time t0 = absl::FromUnixSeconds(100);
  TokenBucket bucket(60, t0);
  bucket.Take(60, t0);
  EXPECT_EQ(bucket.Available(t0 + absl::Seconds(10)), 10);
  EXPECT_EQ(bucket.Available(t0), 10);
  EXPECT_EQ(bucket.WaitFor(11, t0 + absl::Seconds(10)), absl::Seconds(1));
}

}  // namespace
}  // namespace tiermesh::cloud
