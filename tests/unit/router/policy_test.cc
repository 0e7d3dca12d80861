#include "services/router/policy.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

#include "services/common/config/env.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/router/test_policy.h"

namespace tiermesh::router {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::router::testing::kTestPolicyYaml;
using ::tiermesh::testing::StatusIs;

constexpr char kSomeHash[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
constexpr char kOtherHash[] = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

TEST(PolicyTest, ParsesTheTestPolicy) {
  ASSERT_OK_AND_ASSIGN(Policy p, ParsePolicyText(kTestPolicyYaml));
  EXPECT_EQ(p.name, "test");
  ASSERT_EQ(p.tiers.size(), 4u);
  EXPECT_EQ(p.tiers[2].location, TierLocation::kCloud);
  ASSERT_EQ(p.backends.size(), 5u);
  const BackendConfig* cheap = p.FindBackend("cheap");
  ASSERT_NE(cheap, nullptr);
  EXPECT_EQ(cheap->price.input_nano_per_mtok, 150'000'000);
  EXPECT_EQ(cheap->price.output_nano_per_mtok, 600'000'000);
  EXPECT_EQ(cheap->capabilities.max_context_tokens, 128000);
  EXPECT_TRUE(cheap->capabilities.streaming);  // default
  EXPECT_FALSE(p.FindBackend("tiny-coder")->capabilities.streaming);
  EXPECT_THAT(p.FindBackend("tool-local")->endpoints,
              ElementsAre("127.0.0.1:50054", "127.0.0.1:50055"));
  EXPECT_EQ(p.defaults.max_tokens, 256);
  EXPECT_EQ(p.defaults.priority, Priority::kBalanced);
  EXPECT_EQ(p.rules.size(), 7u);
  EXPECT_TRUE(p.rules[0].local_only);
  EXPECT_EQ(p.resilience.max_extra_fallback_cost->nano_usd, kNanoPerUsd);
  EXPECT_EQ(p.budgets.global_daily.nano_usd, 100 * kNanoPerUsd);
  EXPECT_TRUE(p.callers.allow_anonymous);
  EXPECT_EQ(p.callers.anonymous.tenant, "anonymous");
  EXPECT_EQ(p.TierIndex("cloud_cheap"), 2);
  EXPECT_EQ(p.TierIndex("nope"), -1);
  // Defaults of the optional sections.
  EXPECT_EQ(p.escalation.history_ttl, absl::Hours(1));
  EXPECT_EQ(p.escalation.history_max_entries, 100000);
  EXPECT_EQ(p.load_polling.interval, absl::Seconds(1));
  EXPECT_EQ(p.load_polling.max_age, absl::Seconds(5));
}

TEST(PolicyTest, ParsesEscalationAndLoadPolling) {
  const std::string yaml =
      absl::StrCat(kTestPolicyYaml,
                   "escalation: {history_ttl: 30m, history_max_entries: 500, history_max_mib: 8}\n"
                   "load_polling: {interval: 250ms, timeout: 100ms, max_age: 2s}\n");
  ASSERT_OK_AND_ASSIGN(Policy p, ParsePolicyText(yaml));
  EXPECT_EQ(p.escalation.history_ttl, absl::Minutes(30));
  EXPECT_EQ(p.escalation.history_max_entries, 500);
  EXPECT_EQ(p.escalation.history_max_mib, 8);
  EXPECT_EQ(p.load_polling.interval, absl::Milliseconds(250));
  EXPECT_EQ(p.load_polling.timeout, absl::Milliseconds(100));
  EXPECT_EQ(p.load_polling.max_age, absl::Seconds(2));
}

TEST(PolicyTest, FillsDefaultChainsAndUserTiers) {
  ASSERT_OK_AND_ASSIGN(Policy p, ParsePolicyText(kTestPolicyYaml));
  // Configured:
  EXPECT_THAT(p.fallback_chains.at("local_fast"), ElementsAre("cloud_cheap", "cloud_premium"));
  // Defaults: the tiers above, in order.
  EXPECT_THAT(p.fallback_chains.at("local_tool"), ElementsAre("cloud_cheap", "cloud_premium"));
  EXPECT_THAT(p.fallback_chains.at("cloud_cheap"), ElementsAre("cloud_premium"));
  EXPECT_TRUE(p.fallback_chains.at("cloud_premium").empty());
  EXPECT_EQ(p.user_tiers.size(), 3u);
  EXPECT_EQ(p.user_tiers.at(UserTier::kFree).max_tier, "cloud_cheap");
  EXPECT_EQ(p.user_tiers.at(UserTier::kPaid).max_tier, "");
}

TEST(PolicyTest, DerivesTenantBudgetsAndDecodesKeyHashes) {
  YAML::Node n = YAML::Load(kTestPolicyYaml);
  n["callers"]["keys"][0]["name"] = "a";
  n["callers"]["keys"][0]["sha256"] = kSomeHash;
  n["callers"]["keys"][0]["tenant"] = "acme";
  n["callers"]["keys"][0]["user_tier"] = "paid";
  n["callers"]["keys"][0]["daily_budget_usd"] = "7.5";
  n["callers"]["keys"][1]["name"] = "b";
  n["callers"]["keys"][1]["sha256"] = kOtherHash;
  n["callers"]["keys"][1]["tenant"] = "acme";
  n["callers"]["keys"][1]["user_tier"] = "byok";
  n["callers"]["anonymous"]["daily_budget_usd"] = "0.25";
  ASSERT_OK_AND_ASSIGN(Policy p, ParsePolicyText(YAML::Dump(n)));
  ASSERT_EQ(p.callers.keys.size(), 2u);
  EXPECT_EQ(p.callers.keys[0].sha256[0], 0x9f);
  EXPECT_EQ(p.callers.keys[0].sha256[31], 0x08);
  EXPECT_EQ(p.callers.keys[1].user_tier, UserTier::kByok);
  EXPECT_EQ(p.tenant_daily_budgets.at("acme"), 7'500'000'000);
  EXPECT_EQ(p.tenant_daily_budgets.at("anonymous"), 250'000'000);
}

TEST(PolicyTest, ExpandsEnvironmentVariables) {
  YAML::Node n = YAML::Load(kTestPolicyYaml);
  n["backends"][0]["endpoints"][0] = "${WORKER_ADDR:-127.0.0.1:50052}";
  const std::string text = YAML::Dump(n);
  ASSERT_OK_AND_ASSIGN(Policy defaults, ParsePolicyText(text, "p.yaml", config::MapEnv({})));
  EXPECT_EQ(defaults.backends[0].endpoints[0], "127.0.0.1:50052");
  ASSERT_OK_AND_ASSIGN(Policy set,
                       ParsePolicyText(text, "p.yaml", config::MapEnv({{"WORKER_ADDR", "w:9"}})));
  EXPECT_EQ(set.backends[0].endpoints[0], "w:9");
  // The version follows the expanded content.
  EXPECT_NE(defaults.version, set.version);
}

TEST(PolicyTest, VersionFollowsContentNotComments) {
  ASSERT_OK_AND_ASSIGN(Policy a, ParsePolicyText(kTestPolicyYaml));
  ASSERT_OK_AND_ASSIGN(Policy again, ParsePolicyText(kTestPolicyYaml));
  ASSERT_OK_AND_ASSIGN(Policy commented, ParsePolicyText(std::string("# a comment\n") +
                                                         kTestPolicyYaml + "# trailing comment\n"));
  EXPECT_EQ(a.version, again.version);
  EXPECT_EQ(a.version, commented.version);
  EXPECT_THAT(a.version, ::testing::MatchesRegex("test-[0-9a-f]{12}"));

  YAML::Node n = YAML::Load(kTestPolicyYaml);
  n["backends"][3]["price"]["output_usd_per_mtok"] = "0.61";
  ASSERT_OK_AND_ASSIGN(Policy repriced, ParsePolicyText(YAML::Dump(n)));
  EXPECT_NE(a.version, repriced.version);

  n.remove("name");
  ASSERT_OK_AND_ASSIGN(Policy unnamed, ParsePolicyText(YAML::Dump(n)));
  EXPECT_THAT(unnamed.version, ::testing::MatchesRegex("[0-9a-f]{12}"));
}

// One bad edit of the test policy and the error it must produce.
struct BadCase {
  const char* name;
  std::function<void(YAML::Node&)> edit;
  std::vector<std::string> error_has;
};

void AddKey(YAML::Node& n, const std::string& name, const char* hash, const char* tenant) {
  YAML::Node key;
  key["name"] = name;
  key["sha256"] = hash;
  key["tenant"] = tenant;
  key["user_tier"] = "paid";
  n["callers"]["keys"].push_back(key);
}

const std::vector<BadCase>& BadCases() {
  static const auto* cases = new std::vector<BadCase>{
      {"unknown top-level key", [](YAML::Node& n) { n["tierz"] = "x"; }, {"unknown key 'tierz'"}},
      {"unknown nested key with hint",
       [](YAML::Node& n) { n["backends"][0]["modle"] = "x"; },
       {"unknown key 'backends[0].modle'", "did you mean 'model'"}},
      {"missing price",
       [](YAML::Node& n) { n["backends"][1].remove("price"); },
       {"missing required key 'backends[1].price'"}},
      {"negative price",
       [](YAML::Node& n) { n["backends"][3]["price"]["input_usd_per_mtok"] = "-1"; },
       {"backends[3].price.input_usd_per_mtok", "'-1' is not a USD amount"}},
      {"price with exponent",
       [](YAML::Node& n) { n["backends"][3]["price"]["output_usd_per_mtok"] = "1e3"; },
       {"backends[3].price.output_usd_per_mtok", "'1e3'"}},
      {"price with too many decimals",
       [](YAML::Node& n) { n["backends"][3]["price"]["output_usd_per_mtok"] = "0.0000000001"; },
       {"more than 9 decimals"}},
      {"missing context window",
       [](YAML::Node& n) { n["backends"][0]["capabilities"].remove("max_context_tokens"); },
       {"missing required key 'backends[0].capabilities.max_context_tokens'"}},
      {"zero context window",
       [](YAML::Node& n) { n["backends"][0]["capabilities"]["max_context_tokens"] = 0; },
       {"backends[0].capabilities.max_context_tokens", "out of range"}},
      {"capability not a bool",
       [](YAML::Node& n) { n["backends"][0]["capabilities"]["tools"] = "yes"; },
       {"backends[0].capabilities.tools", "expected true or false"}},
      {"backend with unknown tier",
       [](YAML::Node& n) { n["backends"][0]["tier"] = "local_fats"; },
       {"backends[0].tier: unknown tier 'local_fats'", "tiers are: "}},
      {"duplicate backend",
       [](YAML::Node& n) { n["backends"][1]["name"] = "tiny"; },
       {"backends[1].name", "backend 'tiny' is defined twice"}},
      {"bad backend name",
       [](YAML::Node& n) { n["backends"][1]["name"] = "tiny coder"; },
       {"backends[1].name", "may only contain"}},
      {"duplicate tier",
       [](YAML::Node& n) { n["tiers"][1]["name"] = "local_fast"; },
       {"tiers[1].name", "defined twice"}},
      {"tier location unknown",
       [](YAML::Node& n) { n["tiers"][1]["location"] = "edge"; },
       {"tiers[1].location", "'edge' is not one of: local, cloud"}},
      {"tier without backend",
       [](YAML::Node& n) {
         YAML::Node t;
         t["name"] = "orphan";
         t["location"] = "cloud";
         n["tiers"].push_back(t);
       },
       {"tiers[4]", "tier 'orphan' has no backend"}},
      {"endpoint without port",
       [](YAML::Node& n) { n["backends"][0]["endpoints"][0] = "localhost"; },
       {"backends[0].endpoints", "must be host:port"}},
      {"endpoint port out of range",
       [](YAML::Node& n) { n["backends"][0]["endpoints"][0] = "127.0.0.1:70000"; },
       {"must be host:port (port 1-65535)"}},
      {"duplicate endpoint",
       [](YAML::Node& n) { n["backends"][2]["endpoints"][1] = "127.0.0.1:50054"; },
       {"backends[2].endpoints", "listed twice"}},
      {"no endpoints",
       [](YAML::Node& n) { n["backends"][2]["endpoints"] = YAML::Node(YAML::NodeType::Sequence); },
       {"backends[2].endpoints", "at least one endpoint"}},
      {"rule with unknown tier",
       [](YAML::Node& n) { n["rules"][4]["tier"] = "cloud_prem"; },
       {"rules[4].tier: unknown tier 'cloud_prem'"}},
      {"local-only rule to a cloud tier",
       [](YAML::Node& n) { n["rules"][0]["tier"] = "cloud_cheap"; },
       {"rules[0].tier", "local_only but its tier 'cloud_cheap' is a cloud tier"}},
      {"catch-all before the end",
       [](YAML::Node& n) { n["rules"][1].remove("when"); },
       {"rules[1]", "could never match"}},
      {"last rule with conditions",
       [](YAML::Node& n) { n["rules"][6]["when"]["pii"] = false; },
       {"rules[6]", "must have no conditions"}},
      {"duplicate rule",
       [](YAML::Node& n) { n["rules"][2]["name"] = "tools"; },
       {"rules[2].name", "rule 'tools' is defined twice"}},
      {"complexity bounds crossed",
       [](YAML::Node& n) { n["rules"][5]["when"]["max_complexity"] = 0.3; },
       {"rules[5].when", "min_complexity must be below max_complexity"}},
      {"complexity out of range",
       [](YAML::Node& n) { n["rules"][4]["when"]["min_complexity"] = 1.5; },
       {"rules[4].when.min_complexity", "out of range [0, 1]"}},
      {"unknown task",
       [](YAML::Node& n) { n["rules"][1]["when"]["task"][0] = "poetry"; },
       {"rules[1].when.task[0]", "'poetry' is not one of: chat, tool, code, math, reasoning"}},
      {"task not a list",
       [](YAML::Node& n) { n["rules"][1]["when"]["task"] = "tool"; },
       {"rules[1].when.task", "expected a list"}},
      {"unknown condition",
       [](YAML::Node& n) { n["rules"][1]["when"]["complexity"] = 0.5; },
       {"unknown key 'rules[1].when.complexity'"}},
      {"unknown user tier",
       [](YAML::Node& n) { n["user_tiers"]["gold"]["max_tier"] = "local_fast"; },
       {"user_tiers.gold", "unknown user tier 'gold'"}},
      {"user tier bounds crossed",
       [](YAML::Node& n) { n["user_tiers"]["free"]["min_tier"] = "cloud_premium"; },
       {"user_tiers.free", "min_tier is above max_tier"}},
      {"user tier unknown bound",
       [](YAML::Node& n) { n["user_tiers"]["paid"]["max_tier"] = "gold"; },
       {"user_tiers.paid.max_tier", "unknown tier 'gold'"}},
      {"chain to unknown tier",
       [](YAML::Node& n) { n["fallback_chains"]["local_fast"][1] = "moon"; },
       {"fallback_chains.local_fast[1]", "unknown tier 'moon'"}},
      {"chain to itself",
       [](YAML::Node& n) { n["fallback_chains"]["local_fast"][0] = "local_fast"; },
       {"cannot fall back to itself"}},
      {"chain with a duplicate",
       [](YAML::Node& n) { n["fallback_chains"]["local_fast"][1] = "cloud_cheap"; },
       {"fallback_chains.local_fast[1]", "listed twice"}},
      {"chain for an unknown tier",
       [](YAML::Node& n) { n["fallback_chains"]["cloud_best"].push_back("cloud_cheap"); },
       {"fallback_chains.cloud_best", "unknown tier"}},
      {"degrade order reversed",
       [](YAML::Node& n) {
         n["budgets"]["degrade"]["free_local_only_at"] = 0.9;
         n["budgets"]["degrade"]["paid_local_only_at"] = 0.5;
       },
       {"budgets.degrade", "free users degrade first"}},
      {"degrade share zero",
       [](YAML::Node& n) { n["budgets"]["degrade"]["free_local_only_at"] = 0; },
       {"budgets.degrade.free_local_only_at", "must be above 0"}},
      {"missing global cap",
       [](YAML::Node& n) { n["budgets"].remove("global_daily_usd"); },
       {"missing required key 'budgets.global_daily_usd'"}},
      {"missing budgets",
       [](YAML::Node& n) { n.remove("budgets"); },
       {"missing required key 'budgets'"}},
      {"missing classifier",
       [](YAML::Node& n) { n.remove("classifier"); },
       {"missing required key 'classifier'"}},
      {"bad classifier timeout",
       [](YAML::Node& n) { n["classifier"]["timeout"] = "500"; },
       {"classifier.timeout", "expected a duration"}},
      {"zero max_tokens",
       [](YAML::Node& n) { n["defaults"]["max_tokens"] = 0; },
       {"defaults.max_tokens", "out of range"}},
      {"zero attempts",
       [](YAML::Node& n) { n["resilience"]["max_attempts"] = 0; },
       {"resilience.max_attempts", "out of range"}},
      {"zero attempt timeout",
       [](YAML::Node& n) { n["resilience"]["attempt_timeout"] = "0s"; },
       {"resilience.attempt_timeout", "must be positive"}},
      {"zero history ttl",
       [](YAML::Node& n) { n["escalation"]["history_ttl"] = "0s"; },
       {"escalation.history_ttl", "must be positive"}},
      {"negative history entries",
       [](YAML::Node& n) { n["escalation"]["history_max_entries"] = -1; },
       {"escalation.history_max_entries", "out of range"}},
      {"history typo",
       [](YAML::Node& n) { n["escalation"]["history_tll"] = "1h"; },
       {"unknown key 'escalation.history_tll'"}},
      {"reports always stale",
       [](YAML::Node& n) {
         n["load_polling"]["interval"] = "10s";
         n["load_polling"]["max_age"] = "5s";
       },
       {"load_polling", "max_age must be longer than interval"}},
      {"zero poll timeout",
       [](YAML::Node& n) { n["load_polling"]["timeout"] = "0s"; },
       {"load_polling.timeout", "must be positive"}},
      {"retry ratio above one",
       [](YAML::Node& n) { n["resilience"]["retry_budget"]["ratio"] = 1.5; },
       {"resilience.retry_budget.ratio", "out of range"}},
      {"breaker ratio zero",
       [](YAML::Node& n) { n["resilience"]["breaker"]["failure_ratio"] = 0; },
       {"resilience.breaker.failure_ratio"}},
      {"per-backend breaker typo",
       [](YAML::Node& n) { n["backends"][0]["breaker"]["open_fro"] = "5s"; },
       {"unknown key 'backends[0].breaker.open_fro'", "did you mean 'open_for'"}},
      {"nobody can call",
       [](YAML::Node& n) { n["callers"]["allow_anonymous"] = false; },
       {"callers", "nobody could call"}},
      {"anonymous byok",
       [](YAML::Node& n) { n["callers"]["anonymous"]["user_tier"] = "byok"; },
       {"callers.anonymous", "cannot be byok"}},
      {"short key hash",
       [](YAML::Node& n) { AddKey(n, "k", "sk-live-secret-key", "acme"); },
       {"callers.keys[0].sha256", "64 hex digits", "not shown"}},
      {"non-hex key hash",
       [](YAML::Node& n) {
         AddKey(n, "k", "zz86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "a");
       },
       {"callers.keys[0].sha256", "non-hex"}},
      {"duplicate key hash",
       [](YAML::Node& n) {
         AddKey(n, "k1", kSomeHash, "acme");
         AddKey(n, "k2", kSomeHash, "acme");
       },
       {"callers.keys[1].sha256", "configured twice"}},
      {"duplicate key name",
       [](YAML::Node& n) {
         AddKey(n, "k1", kSomeHash, "acme");
         AddKey(n, "k1", kOtherHash, "acme");
       },
       {"callers.keys[1].name", "used twice"}},
      {"tenant budgets disagree",
       [](YAML::Node& n) {
         AddKey(n, "k1", kSomeHash, "acme");
         AddKey(n, "k2", kOtherHash, "acme");
         n["callers"]["keys"][0]["daily_budget_usd"] = 5;
         n["callers"]["keys"][1]["daily_budget_usd"] = 6;
       },
       {"callers.keys[1].daily_budget_usd", "tenant 'acme' already has daily_budget_usd $5"}},
      {"key without user tier",
       [](YAML::Node& n) {
         AddKey(n, "k1", kSomeHash, "acme");
         n["callers"]["keys"][0].remove("user_tier");
       },
       {"missing required key 'callers.keys[0].user_tier'"}},
      {"empty document", [](YAML::Node& n) { n = YAML::Node(); }, {"missing required key"}},
      {"not a mapping",
       [](YAML::Node& n) {
         n = YAML::Node(YAML::NodeType::Sequence);
         n.push_back(1);
       },
       {"expected a mapping"}},
  };
  return *cases;
}

TEST(PolicyTest, RejectsBadPoliciesWithThePath) {
  for (const BadCase& c : BadCases()) {
    SCOPED_TRACE(c.name);
    YAML::Node n = YAML::Load(kTestPolicyYaml);
    c.edit(n);
    absl::StatusOr<Policy> p = ParsePolicyText(YAML::Dump(n), "router.yaml");
    ASSERT_FALSE(p.ok()) << "accepted";
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("router.yaml: "));
    for (const std::string& part : c.error_has) {
      EXPECT_THAT(std::string(p.status().message()), HasSubstr(part));
    }
  }
}

TEST(PolicyTest, KeyHashErrorsNeverEchoTheValue) {
  YAML::Node n = YAML::Load(kTestPolicyYaml);
  AddKey(n, "k", "sk-live-0123456789abcdef", "acme");
  absl::StatusOr<Policy> p = ParsePolicyText(YAML::Dump(n));
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr("sk-live")));
}

TEST(PolicyTest, ReportsLineAndColumn) {
  std::string text = kTestPolicyYaml;
  text.replace(text.find("max_tokens: 256"), 15, "max_tokens: -3");
  EXPECT_THAT(ParsePolicyText(text, "router.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("router.yaml: defaults.max_tokens"), HasSubstr("line 4"))));
}

TEST(PolicyTest, MalformedYamlIsAnError) {
  EXPECT_THAT(ParsePolicyText("tiers: [unclosed\n", "router.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("router.yaml")));
}

}  // namespace
}  // namespace tiermesh::router
