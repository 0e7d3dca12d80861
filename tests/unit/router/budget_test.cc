#include "services/router/budget.h"

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/router/fake_clock.h"
#include "tests/unit/router/test_policy.h"

namespace tiermesh::router {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::router::testing::FakeClock;
using ::tiermesh::testing::StatusIs;

absl::Time Utc(int y, int mo, int d, int h, int mi, int s) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

BudgetLimits Limits() {
  BudgetLimits l;
  l.global_daily = 100'000;
  l.default_tenant_daily = 40'000;
  l.tenant_daily["big"] = 90'000;
  l.free_local_only_at = 0.8;
  l.paid_local_only_at = 0.95;
  l.daily_cloud_fallback_limit = 3;
  return l;
}

TEST(BudgetTest, ReserveSettleRelease) {
  FakeClock clock(Utc(2026, 11, 3, 12, 0, 0));
  InMemoryBudgetStore store(Limits(), &clock);
  ASSERT_OK_AND_ASSIGN(Reservation a, store.Reserve({"acme", UserTier::kPaid, 10'000}));
  ASSERT_OK_AND_ASSIGN(Reservation b, store.Reserve({"acme", UserTier::kPaid, 5'000}));
  BudgetSnapshot s = store.Snapshot("acme");
  EXPECT_EQ(s.tenant_reserved, 15'000);
  EXPECT_EQ(s.global_reserved, 15'000);
  EXPECT_EQ(s.view.tenant_remaining, 25'000);
  EXPECT_EQ(s.view.global_remaining, 85'000);
  EXPECT_EQ(s.day, absl::CivilDay(2026, 11, 3));

  ASSERT_OK(store.Settle(a, 3'000));  // real cost below the worst case
  ASSERT_OK(store.Release(b));        // failed call: nothing spent
  s = store.Snapshot("acme");
  EXPECT_EQ(s.tenant_spent, 3'000);
  EXPECT_EQ(s.tenant_reserved, 0);
  EXPECT_EQ(s.global_spent, 3'000);
  EXPECT_EQ(s.view.tenant_remaining, 37'000);

  // Each reservation is finished exactly once.
  EXPECT_THAT(store.Settle(a, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not outstanding")));
  EXPECT_THAT(store.Release(b), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("")));
  EXPECT_EQ(store.Snapshot("acme").global_spent, 3'000);
}

TEST(BudgetTest, RejectsBadInput) {
  FakeClock clock;
  InMemoryBudgetStore store(Limits(), &clock);
  EXPECT_THAT(store.Reserve({"acme", UserTier::kPaid, -1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(store.Reserve({"", UserTier::kPaid, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tenant")));
  ASSERT_OK_AND_ASSIGN(Reservation r, store.Reserve({"acme", UserTier::kPaid, 1}));
  EXPECT_THAT(store.Settle(r, -5), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("")));
  Reservation forged = r;
  forged.id = 12345;
  EXPECT_THAT(store.Release(forged),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("")));
}

TEST(BudgetTest, CapsRefuseWithReasons) {
  FakeClock clock;
  InMemoryBudgetStore store(Limits(), &clock);
  // Tenant cap (default 40'000).
  ASSERT_OK(store.Reserve({"acme", UserTier::kPaid, 40'000}).status());
  absl::StatusOr<Reservation> over = store.Reserve({"acme", UserTier::kPaid, 1});
  EXPECT_THAT(over, StatusIs(absl::StatusCode::kResourceExhausted,
                             HasSubstr("tenant 'acme' daily budget: $0 of $0.00004 left")));
  EXPECT_EQ(ErrorReason(over.status()), kBudgetReasonTenant);
  // Another tenant with a bigger cap, but the global cap (100'000) binds first.
  ASSERT_OK(store.Reserve({"big", UserTier::kByok, 50'000}).status());
  absl::StatusOr<Reservation> global = store.Reserve({"big", UserTier::kByok, 20'000});
  EXPECT_THAT(global, StatusIs(absl::StatusCode::kResourceExhausted,
                               HasSubstr("global daily budget: $0.00001 of $0.0001 left")));
  EXPECT_EQ(ErrorReason(global.status()), kBudgetReasonGlobal);
}

TEST(BudgetTest, ZeroCostIsAlwaysReachable) {
  FakeClock clock;
  BudgetLimits l = Limits();
  l.global_daily = 0;
  InMemoryBudgetStore store(l, &clock);
  EXPECT_THAT(store.Reserve({"acme", UserTier::kPaid, 1}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("")));
  ASSERT_OK_AND_ASSIGN(Reservation r, store.Reserve({"acme", UserTier::kFree, 0}));
  ASSERT_OK(store.Settle(r, 0));
  const BudgetSnapshot s = store.Snapshot("acme");
  EXPECT_TRUE(s.view.free_local_only);
  EXPECT_TRUE(s.view.paid_local_only);
  EXPECT_EQ(s.view.global_remaining, 0);
}

TEST(BudgetTest, DegradesFreeThenPaidNeverByok) {
  FakeClock clock;
  BudgetLimits limits = Limits();
  limits.tenant_daily["spender"] = 1'000'000;
  InMemoryBudgetStore store(limits, &clock);
  struct Step {
    NanoUsd spend_to;  // global spend before the checks
    bool free_ok;
    bool paid_ok;
    bool byok_ok;
  };
  const Step steps[] = {
      {79'000, true, true, true},
      {80'000, false, true, true},  // 80%: free users local-only
      {94'000, false, true, true},
      {95'000, false, false, true},  // 95%: paid users too
  };
  NanoUsd spent = 0;
  for (const Step& step : steps) {
    SCOPED_TRACE(step.spend_to);
    ASSERT_OK_AND_ASSIGN(Reservation r,
                         store.Reserve({"spender", UserTier::kByok, step.spend_to - spent}));
    ASSERT_OK(store.Settle(r, step.spend_to - spent));
    spent = step.spend_to;
    const BudgetSnapshot s = store.Snapshot("other");
    EXPECT_EQ(s.view.free_local_only, !step.free_ok);
    EXPECT_EQ(s.view.paid_local_only, !step.paid_ok);
    for (auto [tier, ok] :
         {std::pair{UserTier::kFree, step.free_ok}, std::pair{UserTier::kPaid, step.paid_ok},
          std::pair{UserTier::kByok, step.byok_ok}}) {
      absl::StatusOr<Reservation> r2 = store.Reserve({"other", tier, 100});
      EXPECT_EQ(r2.ok(), ok) << UserTierName(tier) << ": " << r2.status();
      if (r2.ok()) {
        ASSERT_OK(store.Release(*r2));
      } else {
        EXPECT_EQ(ErrorReason(r2.status()), kBudgetReasonDegraded);
        EXPECT_THAT(std::string(r2.status().message()), HasSubstr("local-only until midnight UTC"));
      }
      // Local calls stay open to everyone.
      ASSERT_OK_AND_ASSIGN(Reservation local, store.Reserve({"other", tier, 0}));
      ASSERT_OK(store.Release(local));
    }
  }
}

TEST(BudgetTest, RealCostAboveTheReservationIsStillCharged) {
  FakeClock clock;
  InMemoryBudgetStore store(Limits(), &clock);
  ASSERT_OK_AND_ASSIGN(Reservation r, store.Reserve({"acme", UserTier::kPaid, 1'000}));
  ASSERT_OK(store.Settle(r, 1'500));
  EXPECT_EQ(store.Snapshot("acme").tenant_spent, 1'500);
}

TEST(BudgetTest, DayRollsOverAtMidnightUtc) {
  FakeClock clock(Utc(2026, 11, 3, 23, 59, 0));
  InMemoryBudgetStore store(Limits(), &clock);
  ASSERT_OK_AND_ASSIGN(Reservation spent, store.Reserve({"acme", UserTier::kPaid, 30'000}));
  ASSERT_OK(store.Settle(spent, 30'000));
  ASSERT_OK_AND_ASSIGN(Reservation late, store.Reserve({"acme", UserTier::kPaid, 10'000}));
  EXPECT_FALSE(store.Reserve({"acme", UserTier::kPaid, 1}).ok());  // 40'000 used

  clock.Advance(absl::Minutes(2));  // 00:01 the next day
  BudgetSnapshot s = store.Snapshot("acme");
  EXPECT_EQ(s.day, absl::CivilDay(2026, 11, 4));
  EXPECT_EQ(s.tenant_spent, 0);
  EXPECT_EQ(s.tenant_reserved, 0);
  EXPECT_EQ(s.view.tenant_remaining, 40'000);
  ASSERT_OK_AND_ASSIGN(Reservation today, store.Reserve({"acme", UserTier::kPaid, 40'000}));

  // Yesterday's reservation settles against yesterday, not today.
  ASSERT_OK(store.Settle(late, 10'000));
  s = store.Snapshot("acme");
  EXPECT_EQ(s.tenant_spent, 0);
  EXPECT_EQ(s.tenant_reserved, 40'000);
  ASSERT_OK(store.Release(today));
}

TEST(BudgetTest, DailyCloudFallbackLimit) {
  FakeClock clock(Utc(2026, 11, 3, 10, 0, 0));
  InMemoryBudgetStore store(Limits(), &clock);
  EXPECT_TRUE(store.TryCountCloudFallback());
  EXPECT_TRUE(store.TryCountCloudFallback());
  EXPECT_FALSE(store.Snapshot("x").view.cloud_fallbacks_exhausted);
  EXPECT_TRUE(store.TryCountCloudFallback());
  EXPECT_FALSE(store.TryCountCloudFallback());
  BudgetSnapshot s = store.Snapshot("x");
  EXPECT_TRUE(s.view.cloud_fallbacks_exhausted);
  EXPECT_EQ(s.cloud_fallbacks, 3);
  clock.Advance(absl::Hours(24));
  EXPECT_TRUE(store.TryCountCloudFallback());
  // Unset limit: unlimited.
  BudgetLimits l = Limits();
  l.daily_cloud_fallback_limit.reset();
  store.SetLimits(l);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(store.TryCountCloudFallback());
}

TEST(BudgetTest, LimitsFromPolicy) {
  YAML::Node n = YAML::Load(testing::kTestPolicyYaml);
  n["budgets"]["default_tenant_daily_usd"] = "2.5";
  n["budgets"]["degrade"]["free_local_only_at"] = 0.7;
  n["budgets"]["daily_cloud_fallback_limit"] = 50;
  n["callers"]["anonymous"]["daily_budget_usd"] = "0.1";
  ASSERT_OK_AND_ASSIGN(Policy p, ParsePolicyText(YAML::Dump(n)));
  const BudgetLimits l = BudgetLimitsFromPolicy(p);
  EXPECT_EQ(l.global_daily, 100 * kNanoPerUsd);
  EXPECT_EQ(l.default_tenant_daily, 2'500'000'000);
  EXPECT_EQ(l.tenant_daily.at("anonymous"), 100'000'000);
  EXPECT_DOUBLE_EQ(l.free_local_only_at, 0.7);
  EXPECT_DOUBLE_EQ(l.paid_local_only_at, 0.95);
  EXPECT_EQ(l.daily_cloud_fallback_limit, 50);
}

TEST(BudgetTest, ConcurrentReservationsNeverOverspend) {
  FakeClock clock;
  BudgetLimits l;
  l.global_daily = 1'000;
  InMemoryBudgetStore store(l, &clock);
  constexpr int kThreads = 16;
  constexpr int kPerThread = 500;
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (store.Reserve({absl::StrCat("tenant", t % 4), UserTier::kPaid, 7}).ok()) ++granted;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(granted.load(), 1'000 / 7);  // 142 x 7 = 994 <= 1000 < 143 x 7
  EXPECT_EQ(store.Snapshot("tenant0").global_reserved, 994);
}

TEST(BudgetTest, ConcurrentChurnKeepsExactAccounts) {
  FakeClock clock;
  BudgetLimits l;
  l.global_daily = 5'000'000;
  l.default_tenant_daily = 2'000'000;
  InMemoryBudgetStore store(l, &clock);
  constexpr int kThreads = 12;
  std::atomic<int64_t> settled{0};
  std::atomic<bool> over_cap{false};
  std::atomic<bool> done{false};
  std::thread monitor([&] {
    while (!done.load()) {
      const BudgetSnapshot s = store.Snapshot("t0");
      if (s.global_spent + s.global_reserved > 5'000'000 ||
          s.tenant_spent + s.tenant_reserved > 2'000'000) {
        over_cap = true;
      }
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      std::uniform_int_distribution<int> amount(1, 2'000);
      for (int i = 0; i < 3'000; ++i) {
        const NanoUsd worst = amount(rng);
        absl::StatusOr<Reservation> r =
            store.Reserve({absl::StrCat("t", t % 3), UserTier::kPaid, worst});
        if (!r.ok()) continue;
        if (i % 3 == 0) {
          ASSERT_OK(store.Release(*r));
        } else {
          const NanoUsd real = worst / 2;
          ASSERT_OK(store.Settle(*r, real));
          settled += real;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  done = true;
  monitor.join();
  EXPECT_FALSE(over_cap.load());
  const BudgetSnapshot s = store.Snapshot("t0");
  EXPECT_EQ(s.global_spent, settled.load());
  EXPECT_EQ(s.global_reserved, 0);
  EXPECT_LE(s.global_spent, 5'000'000);
  EXPECT_GT(s.global_spent, 0);
}

}  // namespace
}  // namespace tiermesh::router
