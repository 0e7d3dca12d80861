// Helpers shared by the router's in-process tests: a gRPC server on
// 127.0.0.1 port 0 for one service, and a metric's value read straight from
// a prometheus registry.
#ifndef TIERMESH_TESTS_UNIT_ROUTER_TEST_UTIL_H_
#define TIERMESH_TESTS_UNIT_ROUTER_TEST_UTIL_H_

#include <map>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "prometheus/registry.h"

#include "services/common/server/server.h"

namespace tiermesh::router::testing {

// Started and SERVING; null (with a test failure) when it cannot start.
inline std::unique_ptr<server::RunningServer> ServeInProcess(const std::string& name,
                                                             grpc::Service* service) {
  server::ServerOptions options;
  options.service_name = name;
  options.grpc_address = "127.0.0.1:0";
  options.drain_timeout = absl::Seconds(1);
  server::ServerComponents parts;
  parts.services = {service};
  absl::StatusOr<std::unique_ptr<server::RunningServer>> s =
      server::RunningServer::Start(options, parts);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  (*s)->SetServing(true);
  return *std::move(s);
}

// The value of the counter or gauge `family_name` with exactly `labels`; -1
// when there is no such series.
inline double MetricValue(prometheus::Registry& registry, const std::string& family_name,
                          const std::map<std::string, std::string>& labels) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != family_name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      std::map<std::string, std::string> got;
      for (const prometheus::ClientMetric::Label& l : metric.label) got[l.name] = l.value;
      if (got != labels) continue;
      return family.type == prometheus::MetricType::Gauge ? metric.gauge.value
                                                          : metric.counter.value;
    }
  }
  return -1;
}

}  // namespace tiermesh::router::testing

#endif  // TIERMESH_TESTS_UNIT_ROUTER_TEST_UTIL_H_
