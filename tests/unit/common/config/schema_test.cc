#include "services/common/config/schema.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/config/loader.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"

// The idiom from schema.h, as a service would write it.
namespace example {

enum class Tier { kSmall, kLarge, kCloud };

struct Backend {
  std::string name;
  std::string endpoint;
  absl::Duration timeout = absl::Seconds(30);
  Tier tier = Tier::kSmall;
  std::vector<std::string> models;
};

struct Server {
  std::string listen = "0.0.0.0:8080";
  uint16_t metrics_port = 9090;
  bool reflection = true;
};

struct RouterConfig {
  Server server;
  std::vector<Backend> backends;
  std::map<std::string, double> price_per_mtok;
  absl::optional<double> max_cost_usd;
  int min_tier = 0;
  int max_tier = 3;
};

absl::Status Decode(const tiermesh::config::Node& node, Tier* out) {
  return tiermesh::config::DecodeEnum(
      node, out, {{"small", Tier::kSmall}, {"large", Tier::kLarge}, {"cloud", Tier::kCloud}});
}

absl::Status Decode(const tiermesh::config::Node& node, Backend* out) {
  tiermesh::config::ObjectReader r(node);
  r.Required("name", &out->name, tiermesh::config::NonEmpty());
  r.Required("endpoint", &out->endpoint);
  r.Optional("timeout", &out->timeout,
             tiermesh::config::InRange(absl::Milliseconds(1), absl::Minutes(10)));
  r.Optional("tier", &out->tier);
  r.Optional("models", &out->models);
  return r.Finish();
}

absl::Status Decode(const tiermesh::config::Node& node, Server* out) {
  tiermesh::config::ObjectReader r(node);
  r.Optional("listen", &out->listen);
  r.Optional("metrics_port", &out->metrics_port, tiermesh::config::AtLeast(1));
  r.Optional("reflection", &out->reflection);
  return r.Finish();
}

absl::StatusOr<RouterConfig> ParseRouterConfig(const YAML::Node& root) {
  RouterConfig c;
  tiermesh::config::ObjectReader r(root);
  r.Optional("server", &c.server);
  r.Required("backends", &c.backends, tiermesh::config::NonEmpty());
  r.Optional("price_per_mtok", &c.price_per_mtok);
  r.Optional("max_cost_usd", &c.max_cost_usd, tiermesh::config::AtLeast(0.0));
  r.Optional("min_tier", &c.min_tier, tiermesh::config::InRange(0, 3));
  r.Optional("max_tier", &c.max_tier, tiermesh::config::InRange(0, 3));
  r.Ignore("x-anchors");
  r.Validate(c.min_tier <= c.max_tier, "min_tier must not be above max_tier");
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  return c;
}

}  // namespace example

namespace tiermesh::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

YAML::Node Yaml(absl::string_view text) {
  absl::StatusOr<YAML::Node> node = ParseYaml(text, "test.yaml");
  EXPECT_TRUE(node.ok()) << node.status();
  return node.ok() ? *node : YAML::Node();
}

absl::StatusOr<example::RouterConfig> Parse(absl::string_view text) {
  return LoadConfigText(text, "config.yaml", MapEnv({}), example::ParseRouterConfig);
}

TEST(Schema, ParsesTheExampleConfig) {
  ASSERT_OK_AND_ASSIGN(const example::RouterConfig c, Parse(R"(
server:
  listen: 127.0.0.1:0
  metrics_port: 9100
x-anchors:
  common: &common {timeout: 5s}
backends:
  - name: small
    endpoint: worker:50051
    models: [qwen-0.5b, qwen-1.5b]
  - name: cloud
    endpoint: cloud-proxy:50051
    tier: cloud
    timeout: 1m30s
price_per_mtok: {gpt-4o: 2.5, haiku: 0.25}
max_cost_usd: 0.5
)"));
  EXPECT_EQ(c.server.listen, "127.0.0.1:0");
  EXPECT_EQ(c.server.metrics_port, 9100);
  EXPECT_TRUE(c.server.reflection);  // default kept
  ASSERT_EQ(c.backends.size(), 2u);
  EXPECT_EQ(c.backends[0].name, "small");
  EXPECT_EQ(c.backends[0].timeout, absl::Seconds(30));
  EXPECT_EQ(c.backends[0].tier, example::Tier::kSmall);
  EXPECT_THAT(c.backends[0].models, ElementsAre("qwen-0.5b", "qwen-1.5b"));
  EXPECT_EQ(c.backends[1].tier, example::Tier::kCloud);
  EXPECT_EQ(c.backends[1].timeout, absl::Seconds(90));
  EXPECT_EQ(c.price_per_mtok.at("gpt-4o"), 2.5);
  EXPECT_EQ(c.max_cost_usd, absl::optional<double>(0.5));
}

struct ErrorCase {
  const char* yaml;
  const char* error;  // the whole message, exactly
};

TEST(Schema, ErrorsNameThePathAndPosition) {
  const ErrorCase cases[] = {
      {"backends:\n  - name: a\n    endpoint: e\n  - name: b\n    endpoint: e\n"
       "  - name: c\n    base_urll: x\n    endpoint: e\n",
       "config.yaml: unknown key 'backends[2].base_urll' (line 7, column 5)"},
      {"backends:\n  - name: a\n    endpoit: e\n",
       "config.yaml: missing required key 'backends[0].endpoint' (line 2, column 5)"},
      {"backends:\n  - name: a\n    endpoint: e\n    timout: 5s\n",
       "config.yaml: unknown key 'backends[0].timout' (line 4, column 5); did you mean "
       "'timeout'?"},
      {"server: {metrics_port: 70000}\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: server.metrics_port: 70000 is out of range [0, 65535] (line 1, column 24)"},
      {"server: {metrics_port: 0}\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: server.metrics_port: 0 is below the minimum 1 (line 1, column 24)"},
      {"backends: [{name: a, endpoint: e, timeout: 30}]\n",
       "config.yaml: backends[0].timeout: expected a duration such as 30s, 250ms or 1m30s, got "
       "'30' (line 1, column 44)"},
      {"backends: [{name: a, endpoint: e, timeout: 1h}]\n",
       "config.yaml: backends[0].timeout: 1h is out of range [1ms, 10m] (line 1, column 44)"},
      {"backends: [{name: a, endpoint: e, tier: huge}]\n",
       "config.yaml: backends[0].tier: 'huge' is not one of: small, large, cloud (line 1, "
       "column 41)"},
      {"backends: [{name: '', endpoint: e}]\n",
       "config.yaml: backends[0].name: must not be empty (line 1, column 19)"},
      {"backends: []\n", "config.yaml: backends: must not be empty (line 1, column 11)"},
      {"backends: {name: a}\n",
       "config.yaml: backends: expected a list, got a mapping (line 1, column 11)"},
      {"backends: [{name: [a], endpoint: e}]\n",
       "config.yaml: backends[0].name: expected a string, got a list (line 1, column 19)"},
      {"server: {reflection: yes}\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: server.reflection: expected true or false, got 'yes' (line 1, column 22)"},
      {"min_tier: 1.5\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: min_tier: expected an integer, got '1.5' (line 1, column 11)"},
      {"min_tier: 3\nmax_tier: 1\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: min_tier must not be above max_tier (line 1, column 1)"},
      {"max_cost_usd: -1\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: max_cost_usd: -1 is below the minimum 0 (line 1, column 15)"},
      {"price_per_mtok: {a: x}\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: price_per_mtok.a: expected a finite number, got 'x' (line 1, column 21)"},
      {"price_per_mtok: {a: .nan}\nbackends: [{name: a, endpoint: e}]\n",
       "config.yaml: price_per_mtok.a: expected a finite number, got '.nan' (line 1, column 21)"},
      {"backends: [{name: a, endpoint: e, name: b}]\n",
       "config.yaml: duplicate key 'backends[0].name' (line 1, column 35)"},
      {"base: &b {name: a, endpoint: e}\nbackends: [{<<: *b}]\n",
       "config.yaml: merge keys ('<<') are not supported in 'backends[0]'; repeat the keys "
       "instead (line 2, column 13)"},
      {"- just\n- a list\n", "config.yaml: expected a mapping, got a list (line 1, column 1)"},
      {"", "config.yaml: missing required key 'backends'"},
      {"backends:\n", "config.yaml: missing required key 'backends' (line 1, column 1)"},
  };
  for (const ErrorCase& c : cases) {
    absl::StatusOr<example::RouterConfig> got = Parse(c.yaml);
    EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument, c.error)) << c.yaml;
  }
}

TEST(Schema, ErrorsRedactSecretsPastedIntoTheWrongField) {
  absl::StatusOr<example::RouterConfig> got =
      Parse("min_tier: sk-abcdefghijklmnopqrstuvwxyz012345\nbackends: [{name: a, endpoint: e}]\n");
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("expected an integer, got 'sk-[REDACTED]'")));
}

TEST(Decode, Integers) {
  struct Case {
    const char* scalar;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{{"0", true},
                                         {"-128", true},
                                         {"127", true},
                                         {"128", false},
                                         {"-129", false},
                                         {"0x10", false},
                                         {"1e3", false},
                                         {"", false},
                                         {"12abc", false}}) {
    int8_t v = 0;
    EXPECT_EQ(Decode(Node(YAML::Node(c.scalar)), &v).ok(), c.ok) << c.scalar;
  }
  uint64_t big = 0;
  ASSERT_OK(Decode(Node(YAML::Node("18446744073709551615")), &big));
  EXPECT_EQ(big, 18446744073709551615u);
  EXPECT_THAT(Decode(Node(YAML::Node("-1")), &big),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected a non-negative integer, got '-1'")));
  EXPECT_THAT(Decode(Node(YAML::Node("18446744073709551616")), &big),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-negative integer")));
  int64_t neg = 0;
  ASSERT_OK(Decode(Node(YAML::Node("-9223372036854775808")), &neg));
  EXPECT_EQ(neg, INT64_MIN);
}

TEST(Decode, BoolsDurationsAndDoubles) {
  bool b = false;
  for (const char* t : {"true", "True", "TRUE"}) {
    b = false;
    ASSERT_OK(Decode(Node(YAML::Node(t)), &b));
    EXPECT_TRUE(b);
  }
  for (const char* t : {"yes", "on", "1", "y", "tru"}) {
    EXPECT_FALSE(Decode(Node(YAML::Node(t)), &b).ok()) << t;
  }
  absl::Duration d;
  ASSERT_OK(Decode(Node(YAML::Node("250ms")), &d));
  EXPECT_EQ(d, absl::Milliseconds(250));
  ASSERT_OK(Decode(Node(YAML::Node("0")), &d));
  EXPECT_EQ(d, absl::ZeroDuration());
  for (const char* t : {"-5s", "inf", "5", "five seconds", ""}) {
    EXPECT_FALSE(Decode(Node(YAML::Node(t)), &d).ok()) << t;
  }
  double x = 0;
  ASSERT_OK(Decode(Node(YAML::Node("1e-3")), &x));
  EXPECT_EQ(x, 1e-3);
  EXPECT_FALSE(Decode(Node(YAML::Node("inf")), &x).ok());
}

TEST(ObjectReader, HasAndStickyErrors) {
  const YAML::Node root = Yaml("a: 1\nb: ~\nc: x\n");
  ObjectReader r(root);
  EXPECT_TRUE(r.Has("a"));
  EXPECT_FALSE(r.Has("b"));  // null is absent
  EXPECT_FALSE(r.Has("zzz"));
  int a = 0;
  int c = 7;
  std::string b = "default";
  r.Required("a", &a);
  r.Optional("b", &b);
  r.Required("c", &c);    // fails: 'x' is not an integer
  r.Required("zzz", &a);  // no-op after the first error
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, "default");
  EXPECT_EQ(c, 7);  // untouched on error
  EXPECT_THAT(r.Finish(), StatusIs(absl::StatusCode::kInvalidArgument,
                                   "c: expected an integer, got 'x' (line 3, column 4)"));
}

TEST(ObjectReader, NonStringKeysAreRejected) {
  const YAML::Node root = Yaml("? [a, b]\n: 1\n");
  ObjectReader r(root);
  EXPECT_THAT(r.Finish(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keys must be strings")));
}

TEST(ObjectReader, ParseFunctionCanBeCalledWithAPlainYamlNode) {
  // Parse functions are pure: tests can hand them a tree directly.
  ASSERT_OK_AND_ASSIGN(const example::RouterConfig c,
                       example::ParseRouterConfig(Yaml("backends: [{name: a, endpoint: e}]")));
  EXPECT_EQ(c.backends.at(0).endpoint, "e");
}

}  // namespace
}  // namespace tiermesh::config
