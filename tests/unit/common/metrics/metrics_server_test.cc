#include "services/common/metrics/metrics_server.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/metrics/families.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/common/metrics/scrape_util.h"

namespace tiermesh::metrics {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::SampleValue;
using ::tiermesh::testing::ScrapeMetrics;
using ::tiermesh::testing::StatusIs;

TEST(ValidateHostPort, Table) {
  struct Case {
    std::string address;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1:0", true},
      {"0.0.0.0:9090", true},
      {"localhost:65535", true},
      {"[::]:50051", true},
      {"[::1]:0", true},
      {"my-host.internal:80", true},
      {"", false},
      {"127.0.0.1", false},        // no port
      {":9090", false},            // no host
      {"127.0.0.1:", false},       // empty port
      {"127.0.0.1:65536", false},  // out of range
      {"127.0.0.1:-1", false},
      {"127.0.0.1:80x", false},
      {"127.0.0.1:000000080", false},
      {"::1:80", false},   // unbracketed IPv6
      {"[::1:80", false},  // unclosed bracket
      {"[]:80", false},
      {"bad host:80", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ValidateHostPort(c.address).ok(), c.ok) << "address: '" << c.address << "'";
  }
}

TEST(MetricsServer, ServesTheRegistryOnAnEphemeralPort) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetricsServer> server, MetricsServer::Start("127.0.0.1:0"));
  EXPECT_GT(server->port(), 0);
  ASSERT_OK_AND_ASSIGN(
      auto requests,
      NewCounterVec(server->registry(), "tiermesh_test_requests_total", "help", {"tier"}));
  requests->Get({"small"}).Increment(3);
  ASSERT_OK_AND_ASSIGN(std::string text, ScrapeMetrics(server->port()));
  EXPECT_EQ(SampleValue(text, "tiermesh_test_requests_total", {{"tier", "small"}}), 3);
  EXPECT_THAT(text, HasSubstr("# TYPE tiermesh_test_requests_total counter"));
}

TEST(MetricsServer, PortInUseIsAnErrorNotAnException) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetricsServer> first, MetricsServer::Start("127.0.0.1:0"));
  const std::string taken = "127.0.0.1:" + std::to_string(first->port());
  EXPECT_THAT(MetricsServer::Start(taken).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(taken)));
}

TEST(MetricsServer, NonLocalAddressIsAnError) {
  EXPECT_THAT(MetricsServer::Start("192.0.2.1:0").status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("192.0.2.1:0")));
}

TEST(MetricsServer, MalformedAddressIsInvalidArgument) {
  EXPECT_THAT(MetricsServer::Start("9090").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no port")));
  EXPECT_THAT(MetricsServer::Start("127.0.0.1:99999").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("invalid port")));
}

TEST(MetricsServer, EmptyAddressGivesARegistryWithoutEndpoint) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<MetricsServer> server, MetricsServer::Start(""));
  EXPECT_EQ(server->port(), 0);
  ASSERT_OK_AND_ASSIGN(prometheus::Counter * counter,
                       NewCounter(server->registry(), "tiermesh_test_total", "help"));
  counter->Increment();
  EXPECT_EQ(server->registry().Collect().size(), 1u);
}

}  // namespace
}  // namespace tiermesh::metrics
