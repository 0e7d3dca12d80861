#include "services/common/metrics/families.h"

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::metrics {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

TEST(MetricName, JoinsPrefixSubsystemAndName) {
  EXPECT_EQ(MetricName("router", "requests_total"), "tiermesh_router_requests_total");
  EXPECT_EQ(MetricName("cloud", "cost_usd_total"), "tiermesh_cloud_cost_usd_total");
}

TEST(ValidateMetricName, Table) {
  struct Case {
    std::string name;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"tiermesh_router_requests_total", true},
      {"tiermesh_x", true},
      {"router_requests_total", false},  // no prefix
      {"tiermesh_bad-name", false},      // '-' is not allowed
      {"tiermesh_bad name", false},
      {"", false},
      {"tiermesh_", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ValidateMetricName(c.name).ok(), c.ok) << "name: '" << c.name << "'";
  }
}

TEST(ValidateLabelNames, Table) {
  struct Case {
    std::vector<std::string> labels;
    bool histogram;
    bool ok;
  };
  const std::vector<Case> cases = {
      {{}, false, true},
      {{"tier", "backend"}, false, true},
      {{"le"}, false, true},
      {{"le"}, true, false},             // reserved for buckets
      {{"tier", "tier"}, false, false},  // duplicate
      {{"bad-label"}, false, false},
      {{"__reserved"}, false, false},
      {{"1st"}, false, false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ValidateLabelNames(c.labels, c.histogram).ok(), c.ok)
        << "labels: " << ::testing::PrintToString(c.labels) << " histogram=" << c.histogram;
  }
}

TEST(ValidateBuckets, Table) {
  struct Case {
    std::vector<double> buckets;
    bool ok;
  };
  const std::vector<Case> cases = {
      {{1, 2, 3}, true},
      {{0.005}, true},
      {{}, false},
      {{1, 1}, false},
      {{2, 1}, false},
      {{1, std::numeric_limits<double>::infinity()}, false},
      {{std::numeric_limits<double>::quiet_NaN()}, false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ValidateBuckets(c.buckets).ok(), c.ok)
        << "buckets: " << ::testing::PrintToString(c.buckets);
  }
}

TEST(Buckets, LatencyBucketsAreValidAndReachTwoMinutes) {
  EXPECT_THAT(ValidateBuckets(LatencyBucketsSeconds()), IsOk());
  EXPECT_DOUBLE_EQ(LatencyBucketsSeconds().front(), 0.005);
  EXPECT_DOUBLE_EQ(LatencyBucketsSeconds().back(), 120);
  EXPECT_THAT(ValidateBuckets(RatioBuckets()), IsOk());
  EXPECT_DOUBLE_EQ(RatioBuckets().back(), 1.0);
}

TEST(CounterVec, ChildrenAreCreatedOnceAndCached) {
  prometheus::Registry registry;
  ASSERT_OK_AND_ASSIGN(auto requests, NewCounterVec(registry, "tiermesh_test_requests_total",
                                                    "help", {"tier", "outcome"}));
  prometheus::Counter& a = requests->Get({"small", "ok"});
  prometheus::Counter& b = requests->Get({"small", "ok"});
  prometheus::Counter& c = requests->Get({"small", "error"});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  a.Increment();
  b.Increment(2);
  EXPECT_DOUBLE_EQ(a.Value(), 3);
  EXPECT_DOUBLE_EQ(c.Value(), 0);

  std::vector<prometheus::MetricFamily> collected = registry.Collect();
  ASSERT_EQ(collected.size(), 1u);
  EXPECT_EQ(collected[0].name, "tiermesh_test_requests_total");
  EXPECT_EQ(collected[0].metric.size(), 2u);
}

TEST(HistogramVec, UsesTheGivenBuckets) {
  prometheus::Registry registry;
  ASSERT_OK_AND_ASSIGN(auto duration, NewHistogramVec(registry, "tiermesh_test_duration_seconds",
                                                      "help", {"tier"}, {1, 5, 10}));
  duration->Get({"small"}).Observe(7);
  std::vector<prometheus::MetricFamily> collected = registry.Collect();
  ASSERT_EQ(collected.size(), 1u);
  ASSERT_EQ(collected[0].metric.size(), 1u);
  const prometheus::ClientMetric::Histogram& h = collected[0].metric[0].histogram;
  EXPECT_EQ(h.sample_count, 1u);
  EXPECT_DOUBLE_EQ(h.sample_sum, 7);
  ASSERT_EQ(h.bucket.size(), 4u);  // 1, 5, 10, +Inf (cumulative)
  EXPECT_EQ(h.bucket[1].cumulative_count, 0u);
  EXPECT_EQ(h.bucket[2].cumulative_count, 1u);
}

TEST(GaugeVec, SameNameAndTypeFindsTheExistingFamily) {
  prometheus::Registry registry;
  ASSERT_OK_AND_ASSIGN(auto first, NewGaugeVec(registry, "tiermesh_test_slots", "h", {"model"}));
  ASSERT_OK_AND_ASSIGN(auto second, NewGaugeVec(registry, "tiermesh_test_slots", "h", {"model"}));
  first->Get({"m"}).Set(4);
  EXPECT_DOUBLE_EQ(second->Get({"m"}).Value(), 4);
}

TEST(Families, ErrorsAreStatusesNotExceptions) {
  prometheus::Registry registry;
  ASSERT_OK_AND_ASSIGN(prometheus::Counter * counter,
                       NewCounter(registry, "tiermesh_test_total", "help"));
  counter->Increment();
  // Same name, another type.
  EXPECT_THAT(NewGauge(registry, "tiermesh_test_total", "help").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tiermesh_test_total")));
  EXPECT_THAT(NewCounter(registry, "requests_total", "help").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tiermesh_")));
  EXPECT_THAT(NewCounterVec(registry, "tiermesh_ok_total", "help", {"bad-label"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad-label")));
  EXPECT_THAT(NewHistogram(registry, "tiermesh_h_seconds", "help", {3, 2}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("increase")));
  EXPECT_THAT(NewHistogramVec(registry, "tiermesh_h2_seconds", "help", {"le"}, {1}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("le")));
}

}  // namespace
}  // namespace tiermesh::metrics
