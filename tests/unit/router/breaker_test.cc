#include "services/router/breaker.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

#include "services/common/status/status_matchers.h"
#include "tests/unit/router/fake_clock.h"
#include "tests/unit/router/test_policy.h"

namespace tiermesh::router {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::tiermesh::router::testing::FakeClock;

BreakerSettings Settings() {
  BreakerSettings s;
  s.consecutive_failures = 3;
  s.failure_ratio = 0.5;
  s.min_requests = 10;
  s.window = absl::Seconds(10);
  s.open_for = absl::Seconds(5);
  s.half_open_probes = 1;
  return s;
}

void Call(CircuitBreaker& b, BreakerOutcome outcome) {
  absl::optional<BreakerPermit> p = b.TryAcquire();
  ASSERT_TRUE(p.has_value());
  b.Record(*p, outcome);
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailures) {
  FakeClock clock;
  CircuitBreaker b(Settings(), &clock);
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kSuccess);  // resets the streak
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kFailure);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  Call(b, BreakerOutcome::kFailure);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  EXPECT_FALSE(b.TryAcquire().has_value());
}

TEST(CircuitBreakerTest, IgnoredOutcomesNeitherCountNorReset) {
  FakeClock clock;
  CircuitBreaker b(Settings(), &clock);
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kIgnored);
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kIgnored);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  Call(b, BreakerOutcome::kFailure);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
}

TEST(CircuitBreakerTest, OpensOnFailureRatioOverTheWindow) {
  FakeClock clock;
  BreakerSettings s = Settings();
  s.consecutive_failures = 1000;  // only the ratio can trip
  CircuitBreaker b(s, &clock);
  // Alternate: 50% failures, but not before min_requests (10) were seen.
  for (int i = 0; i < 4; ++i) {
    Call(b, BreakerOutcome::kSuccess);
    Call(b, BreakerOutcome::kFailure);
  }
  EXPECT_EQ(b.state(), BreakerState::kClosed);  // 8 attempts < 10
  Call(b, BreakerOutcome::kSuccess);
  Call(b, BreakerOutcome::kFailure);  // 10 attempts, 5 failures
  EXPECT_EQ(b.state(), BreakerState::kOpen);
}

TEST(CircuitBreakerTest, OldFailuresLeaveTheWindow) {
  FakeClock clock;
  BreakerSettings s = Settings();
  s.consecutive_failures = 1000;
  CircuitBreaker b(s, &clock);
  for (int i = 0; i < 9; ++i) Call(b, BreakerOutcome::kFailure);
  clock.Advance(absl::Seconds(11));  // all of them are out of the 10 s window now
  for (int i = 0; i < 9; ++i) Call(b, BreakerOutcome::kSuccess);
  Call(b, BreakerOutcome::kFailure);  // 10 in window, 1 failure
  EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, HalfOpenProbeClosesOnSuccess) {
  FakeClock clock;
  CircuitBreaker b(Settings(), &clock);
  for (int i = 0; i < 3; ++i) Call(b, BreakerOutcome::kFailure);
  ASSERT_EQ(b.state(), BreakerState::kOpen);
  clock.Advance(absl::Seconds(4));
  EXPECT_FALSE(b.TryAcquire().has_value());  // still cooling down
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  absl::optional<BreakerPermit> probe = b.TryAcquire();
  ASSERT_TRUE(probe.has_value());
  EXPECT_TRUE(probe->probe);
  EXPECT_FALSE(b.TryAcquire().has_value());  // one probe at a time
  b.Record(*probe, BreakerOutcome::kSuccess);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
  // Closed again with a clean slate: two failures do not reopen it.
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kFailure);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, HalfOpenProbeFailureReopens) {
  FakeClock clock;
  CircuitBreaker b(Settings(), &clock);
  for (int i = 0; i < 3; ++i) Call(b, BreakerOutcome::kFailure);
  clock.Advance(absl::Seconds(5));
  absl::optional<BreakerPermit> probe = b.TryAcquire();
  ASSERT_TRUE(probe.has_value());
  b.Record(*probe, BreakerOutcome::kFailure);
  EXPECT_EQ(b.state(), BreakerState::kOpen);
  clock.Advance(absl::Seconds(4));
  EXPECT_FALSE(b.TryAcquire().has_value());  // a full new cool-down
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(b.TryAcquire().has_value());
}

TEST(CircuitBreakerTest, IgnoredProbeFreesItsSlot) {
  FakeClock clock;
  CircuitBreaker b(Settings(), &clock);
  for (int i = 0; i < 3; ++i) Call(b, BreakerOutcome::kFailure);
  clock.Advance(absl::Seconds(5));
  absl::optional<BreakerPermit> probe = b.TryAcquire();
  ASSERT_TRUE(probe.has_value());
  b.Record(*probe, BreakerOutcome::kIgnored);
  EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
  EXPECT_TRUE(b.TryAcquire().has_value());
}

TEST(CircuitBreakerTest, StaleOutcomesAreIgnored) {
  FakeClock clock;
  CircuitBreaker b(Settings(), &clock);
  // A slow call starts while closed...
  absl::optional<BreakerPermit> slow = b.TryAcquire();
  ASSERT_TRUE(slow.has_value());
  for (int i = 0; i < 3; ++i) Call(b, BreakerOutcome::kFailure);
  clock.Advance(absl::Seconds(5));
  absl::optional<BreakerPermit> probe = b.TryAcquire();
  ASSERT_TRUE(probe.has_value());
  b.Record(*probe, BreakerOutcome::kSuccess);
  ASSERT_EQ(b.state(), BreakerState::kClosed);
  // ...and fails after the breaker recovered: it says nothing about now.
  b.Record(*slow, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kFailure);
  Call(b, BreakerOutcome::kFailure);
  EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST(CircuitBreakerTest, ListenerSeesEveryTransitionInOrder) {
  FakeClock clock;
  std::vector<std::pair<BreakerState, BreakerState>> seen;
  CircuitBreaker b(Settings(), &clock,
                   [&](BreakerState from, BreakerState to) { seen.emplace_back(from, to); });
  for (int i = 0; i < 3; ++i) Call(b, BreakerOutcome::kFailure);
  clock.Advance(absl::Seconds(5));
  Call(b, BreakerOutcome::kSuccess);
  EXPECT_THAT(seen, ElementsAre(Pair(BreakerState::kClosed, BreakerState::kOpen),
                                Pair(BreakerState::kOpen, BreakerState::kHalfOpen),
                                Pair(BreakerState::kHalfOpen, BreakerState::kClosed)));
}

TEST(BreakerSetTest, FollowsThePolicyAndKeepsState) {
  FakeClock clock;
  std::vector<std::string> opened;
  BreakerSet set(&clock, [&](const std::string& backend, BreakerState, BreakerState to) {
    if (to == BreakerState::kOpen) opened.push_back(backend);
  });
  YAML::Node n = YAML::Load(testing::kTestPolicyYaml);
  n["resilience"]["breaker"]["consecutive_failures"] = 2;
  n["backends"][0]["breaker"]["consecutive_failures"] = 1;
  ASSERT_OK_AND_ASSIGN(Policy policy, ParsePolicyText(YAML::Dump(n)));
  set.Sync(policy);
  EXPECT_EQ(set.States().size(), 5u);
  EXPECT_EQ(set.Get("nope"), nullptr);

  std::shared_ptr<CircuitBreaker> tiny = set.Get("tiny");
  ASSERT_NE(tiny, nullptr);
  Call(*tiny, BreakerOutcome::kFailure);  // per-backend override: 1 failure opens
  std::shared_ptr<CircuitBreaker> cheap = set.Get("cheap");
  Call(*cheap, BreakerOutcome::kFailure);
  EXPECT_EQ(cheap->state(), BreakerState::kClosed);  // global setting: 2
  EXPECT_THAT(opened, ElementsAre("tiny"));
  EXPECT_EQ(set.States().at("tiny"), BreakerState::kOpen);

  // Reload with "premium" renamed: tiny keeps its state, premium is gone.
  n["backends"][4]["name"] = "premium2";
  ASSERT_OK_AND_ASSIGN(Policy smaller, ParsePolicyText(YAML::Dump(n)));
  set.Sync(smaller);
  EXPECT_EQ(set.Get("premium"), nullptr);
  EXPECT_NE(set.Get("premium2"), nullptr);
  EXPECT_EQ(set.Get("tiny"), tiny);
  EXPECT_EQ(set.States().at("tiny"), BreakerState::kOpen);
}

}  // namespace
}  // namespace tiermesh::router
