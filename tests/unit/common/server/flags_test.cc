#include "services/common/server/flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/server/server.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::server {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

FlagKind FakeLookup(absl::string_view name) {
  if (name == "grpc_address" || name == "config" || name == "log_level") return FlagKind::kValue;
  if (name == "verbose" || name == "help") return FlagKind::kBool;
  return FlagKind::kUnknown;
}

TEST(PrepareFlagArgs, NormalizesAndAcceptsKnownFlags) {
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {{"prog"}, {"prog"}},
      {{"prog", "--grpc-address=1.2.3.4:5"}, {"prog", "--grpc_address=1.2.3.4:5"}},
      {{"prog", "--grpc_address=a-b:5"}, {"prog", "--grpc_address=a-b:5"}},  // value untouched
      {{"prog", "-grpc-address", "x:1"}, {"prog", "-grpc_address", "x:1"}},
      // A value-taking flag without '=' takes the next arg verbatim.
      {{"prog", "--log-level", "--weird-value"}, {"prog", "--log_level", "--weird-value"}},
      {{"prog", "--verbose", "positional-arg"}, {"prog", "--verbose", "positional-arg"}},
      {{"prog", "--noverbose"}, {"prog", "--noverbose"}},
      {{"prog", "--", "--not-a-flag"}, {"prog", "--", "--not-a-flag"}},
      {{"prog", "-"}, {"prog", "-"}},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> got = PrepareFlagArgs(c.args, FakeLookup);
    ASSERT_TRUE(got.ok()) << ::testing::PrintToString(c.args) << ": " << got.status();
    EXPECT_THAT(*got, ElementsAreArray(c.want)) << ::testing::PrintToString(c.args);
  }
}

TEST(PrepareFlagArgs, RejectsUnknownFlags) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"prog", "--bogus"}, "unknown flag '--bogus'"},
      {{"prog", "--bogus=1"}, "unknown flag '--bogus'"},
      {{"prog", "--grpc-adress=x:1"}, "unknown flag '--grpc-adress'"},
      {{"prog", "--noconfig"}, "unknown flag '--noconfig'"},  // not a bool flag
      {{"prog", "--config", "c.yaml", "--bogus"}, "unknown flag '--bogus'"},
      {{"prog", "--=x"}, "malformed flag"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(PrepareFlagArgs(c.args, FakeLookup).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << ::testing::PrintToString(c.args);
  }
}

TEST(LookupLinkedFlag, KnowsTheCommonAndUsageFlags) {
  EXPECT_EQ(LookupLinkedFlag("grpc_address"), FlagKind::kValue);
  EXPECT_EQ(LookupLinkedFlag("drain_timeout"), FlagKind::kValue);
  EXPECT_EQ(LookupLinkedFlag("helpfull"), FlagKind::kBool);
  EXPECT_EQ(LookupLinkedFlag("flagfile"), FlagKind::kValue);
  EXPECT_EQ(LookupLinkedFlag("no_such_flag_anywhere"), FlagKind::kUnknown);
}

TEST(FatalLine, IsOneLineWithTheServiceName) {
  EXPECT_EQ(FatalLine("router", "bad config"), "router: error: bad config\n");
  EXPECT_EQ(FatalLine("router", "line one\nline two"), "router: error: line one line two\n");
  EXPECT_EQ(FatalLine("", "x"), "tiermesh: error: x\n");
}

TEST(ServiceServerOptionsTest, FlagsWinOverTheServiceDefaults) {
  struct Case {
    std::string name;
    CommonFlags flags;
    std::string want_address;
    absl::Duration want_drain;
  };
  CommonFlags given;
  given.grpc_address = "127.0.0.1:0";
  given.drain_timeout = absl::Seconds(3);
  given.ports_file = "/tmp/ports.json";
  const std::vector<Case> cases = {
      {"defaults", CommonFlags{}, "0.0.0.0:50051", absl::Seconds(10)},
      {"flags", given, "127.0.0.1:0", absl::Seconds(3)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const ServerOptions options =
        ServiceServerOptions(c.flags, "classifier", "0.0.0.0:50051", absl::Seconds(10),
                             logging::Logger::Discard(), 9464);
    EXPECT_EQ(options.service_name, "classifier");
    EXPECT_EQ(options.grpc_address, c.want_address);
    EXPECT_EQ(options.drain_timeout, c.want_drain);
    EXPECT_EQ(options.ports_file, c.flags.ports_file);
    EXPECT_EQ(options.metrics_port, 9464);
    EXPECT_TRUE(options.logger.has_value());
    EXPECT_TRUE(options.health_service_names.empty());  // each service adds its own
  }
}

}  // namespace
}  // namespace tiermesh::server
