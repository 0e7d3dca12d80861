#include "services/router/endpoint_choice.h"

#include <cmath>
#include <functional>
#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tiermesh::router {
namespace {

using ::testing::HasSubstr;

EndpointLoad Reported(int busy, int total, int deferred = 0, float kv = 0.0f) {
  EndpointLoad l;
  l.reported = true;
  l.slots_busy = busy;
  l.slots_total = total;
  l.deferred_requests = deferred;
  l.kv_cache_usage_ratio = kv;
  return l;
}

TEST(EndpointChoiceTest, Table) {
  struct Case {
    const char* name;
    std::vector<EndpointLoad> loads;
    absl::optional<size_t> want;
  };
  EndpointLoad not_ready = Reported(0, 4);
  not_ready.ready = false;
  EndpointLoad not_accepting = Reported(0, 4);
  not_accepting.accepting = false;
  EndpointLoad model_loading = Reported(0, 4);
  model_loading.model_ready = false;
  EndpointLoad busy_by_us = Reported(0, 4);
  busy_by_us.router_in_flight = 3;
  EndpointLoad unknown;
  EndpointLoad unknown_busy;
  unknown_busy.router_in_flight = 2;
  EndpointLoad queued = Reported(1, 4);
  queued.queue_depth = 3;
  EndpointLoad cloud_idle = Reported(0, 0);
  EndpointLoad cloud_busy = Reported(0, 0);
  cloud_busy.router_in_flight = 10;

  const Case cases[] = {
      {"least busy slots win", {Reported(3, 4), Reported(1, 4), Reported(2, 4)}, 1},
      {"share of slots, not count", {Reported(2, 4), Reported(3, 8)}, 1},
      {"deferred requests count as load", {Reported(1, 4, 3), Reported(2, 4, 0)}, 1},
      {"queued requests count as load", {queued, Reported(2, 4)}, 1},
      {"a full KV cache weighs", {Reported(1, 4, 0, 0.95f), Reported(1, 4, 0, 0.1f)}, 1},
      {"our own in-flight calls count before the next report", {busy_by_us, Reported(1, 4)}, 1},
      {"not ready is skipped", {not_ready, Reported(3, 4)}, 1},
      {"model not ready is skipped", {model_loading, Reported(3, 4)}, 1},
      {"not accepting is skipped", {not_accepting, Reported(3, 4)}, 1},
      {"nothing usable", {not_ready, not_accepting}, absl::nullopt},
      {"empty", {}, absl::nullopt},
      {"unknown load is tried, but not over an idle replica", {unknown, Reported(0, 4)}, 1},
      {"unknown load beats a busy one", {Reported(3, 4), unknown}, 1},
      {"unknown load with our calls in flight", {unknown_busy, Reported(3, 4)}, 1},
      {"cloud replicas share by in-flight calls", {cloud_busy, cloud_idle}, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(ChooseEndpoint(c.loads, 0), c.want);
  }
}

TEST(EndpointChoiceTest, TiesAreSharedNotAlwaysTheFirst) {
  const std::vector<EndpointLoad> loads = {Reported(1, 4), Reported(3, 4), Reported(1, 4),
                                           Reported(1, 4)};
  std::map<size_t, int> picks;
  for (uint64_t i = 0; i < 300; ++i) ++picks[*ChooseEndpoint(loads, i)];
  EXPECT_EQ(picks.size(), 3u);
  EXPECT_EQ(picks[0], 100);
  EXPECT_EQ(picks[2], 100);
  EXPECT_EQ(picks[3], 100);
  EXPECT_EQ(picks.count(1), 0u);
}

TEST(EndpointChoiceTest, GarbageInputIsClampedNotTrusted) {
  EndpointLoad negative = Reported(-5, 4, -3);
  negative.queue_depth = -100;
  EndpointLoad nan_kv = Reported(0, 4);
  nan_kv.kv_cache_usage_ratio = std::nanf("");
  const EndpointScore n = ScoreEndpoint(negative);
  EXPECT_TRUE(n.usable);
  EXPECT_GE(n.load, 0.0);
  const EndpointScore k = ScoreEndpoint(nan_kv);
  EXPECT_TRUE(std::isfinite(k.load));
  EXPECT_DOUBLE_EQ(k.load, 0.5);  // NaN KV use is taken as full
  // A negative-looking replica cannot out-score an idle one by lying.
  EXPECT_EQ(ChooseEndpoint({negative, Reported(0, 4)}, 0), 0u);
  EXPECT_EQ(ChooseEndpoint({negative, Reported(0, 4)}, 1), 1u);
}

TEST(EndpointChoiceTest, ScoresExplainThemselves) {
  EXPECT_THAT(ScoreEndpoint(Reported(2, 4, 1, 0.5f)).why,
              HasSubstr("2/4 slots busy, 1 waiting, KV cache 50%"));
  EndpointLoad not_accepting = Reported(4, 4);
  not_accepting.accepting = false;
  EXPECT_THAT(ScoreEndpoint(not_accepting).why, HasSubstr("saturated"));
  EXPECT_THAT(ScoreEndpoint(EndpointLoad{}).why, HasSubstr("no recent load report"));
}

}  // namespace
}  // namespace tiermesh::router
