#include "services/router/retry_budget.h"

#include "gtest/gtest.h"

#include "tests/unit/router/fake_clock.h"

namespace tiermesh::router {
namespace {

using ::tiermesh::router::testing::FakeClock;

RetryBudgetSettings Settings(double ratio, double min_per_second) {
  RetryBudgetSettings s;
  s.ratio = ratio;
  s.min_per_second = min_per_second;
  s.window = absl::Seconds(10);
  return s;
}

int AcquireAll(RetryBudget& budget, int tries) {
  int granted = 0;
  for (int i = 0; i < tries; ++i) granted += budget.TryAcquireRetry() ? 1 : 0;
  return granted;
}

TEST(RetryBudgetTest, RetriesAreAShareOfRequests) {
  FakeClock clock;
  RetryBudget budget(Settings(0.2, 0), &clock);
  for (int i = 0; i < 1000; ++i) budget.RecordRequest();
  EXPECT_EQ(budget.RetriesAllowed(), 200);
  EXPECT_EQ(AcquireAll(budget, 1000), 200);
}

TEST(RetryBudgetTest, MinimumPerSecondHelpsQuietRouters) {
  FakeClock clock;
  RetryBudget budget(Settings(0.2, 0.5), &clock);  // floor: 0.5/s x 10 s = 5
  budget.RecordRequest();
  EXPECT_EQ(AcquireAll(budget, 100), 5);
}

TEST(RetryBudgetTest, ZeroMeansNoRetries) {
  FakeClock clock;
  RetryBudget budget(Settings(0, 0), &clock);
  for (int i = 0; i < 100; ++i) budget.RecordRequest();
  EXPECT_FALSE(budget.TryAcquireRetry());
}

TEST(RetryBudgetTest, TheWindowSlides) {
  FakeClock clock;
  RetryBudget budget(Settings(0.5, 0), &clock);
  for (int i = 0; i < 10; ++i) budget.RecordRequest();
  EXPECT_EQ(AcquireAll(budget, 100), 5);
  clock.Advance(absl::Seconds(11));  // requests and retries have left the window
  EXPECT_EQ(AcquireAll(budget, 100), 0);
  for (int i = 0; i < 4; ++i) budget.RecordRequest();
  EXPECT_EQ(AcquireAll(budget, 100), 2);
}

TEST(RetryBudgetTest, AnOutageCannotMultiplyLoad) {
  // Every first attempt fails and every request would like 2 more attempts:
  // the budget lets through at most ratio x requests of them.
  FakeClock clock;
  RetryBudget budget(Settings(0.2, 1), &clock);
  int attempts = 0;
  int requests = 0;
  for (int second = 0; second < 60; ++second) {
    for (int i = 0; i < 100; ++i) {
      budget.RecordRequest();
      ++requests;
      ++attempts;
      for (int retry = 0; retry < 2 && budget.TryAcquireRetry(); ++retry) ++attempts;
    }
    clock.Advance(absl::Seconds(1));
  }
  EXPECT_LE(attempts, requests * 1.2 + 20);
  EXPECT_GE(attempts, requests * 1.15);  // the budget is used, not starved
}

}  // namespace
}  // namespace tiermesh::router
