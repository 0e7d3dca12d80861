#include "services/router/decide.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/router/test_policy.h"

namespace tiermesh::router {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::tiermesh::router::testing::kTestPolicyYaml;
using ::tiermesh::testing::StatusIs;

Policy TestPolicy() {
  absl::StatusOr<Policy> p = ParsePolicyText(kTestPolicyYaml);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Policy{};
}

// "tiny:ok, cheap:budget, ...": each candidate in order, "ok" when eligible,
// else what blocked it.
std::string Summary(const Decision& d) {
  std::vector<std::string> parts;
  for (const Candidate& c : d.candidates) {
    parts.push_back(absl::StrCat(c.backend, ":", c.eligible ? "ok" : c.blocked_by));
  }
  return absl::StrJoin(parts, ", ");
}

// A plain chat request from a free user: the baseline every case edits.
RequestFacts Chat() {
  RequestFacts f;
  f.task = TaskType::kChat;
  f.complexity = 0.1;
  f.prompt_tokens = 100;
  f.prompt_token_bound = 125;
  f.user_tier = UserTier::kFree;
  return f;
}

struct DecideCase {
  const char* name;
  std::function<void(RequestFacts&)> facts;
  std::function<void(RuntimeView&)> view;
  const char* rule;
  const char* start_tier;
  const char* candidates;
  // Substrings expected somewhere in the decision's reasons (may be empty).
  std::vector<std::string> reasons;
};

void NoChange(RuntimeView&) {}

const std::vector<DecideCase>& DecideCases() {
  static const auto* cases = new std::vector<DecideCase>{
      {"simple chat from a free user stays local; premium is above free's bounds",
       [](RequestFacts&) {},
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:ok, premium:tier_bounds",
       {"rule 'default' matched (no conditions)",
        "user tier free allows tiers local_fast to "
        "cloud_cheap",
        "fallback chain: cloud_cheap, cloud_premium"}},
      {"paid users may fall back to premium",
       [](RequestFacts& f) { f.user_tier = UserTier::kPaid; },
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:ok, premium:ok",
       {}},
      {"code task: the code model first",
       [](RequestFacts& f) { f.task = TaskType::kCode; },
       NoChange,
       "default",
       "local_fast",
       "tiny-coder:ok, tiny:ok, cheap:ok, premium:tier_bounds",
       {}},
      {"tool task: only tool-capable backends",
       [](RequestFacts& f) { f.task = TaskType::kTool; },
       NoChange,
       "tools",
       "local_tool",
       "tool-local:ok, cheap:ok, premium:tier_bounds",
       {"rule 'tools' matched (task tool)"}},
      {"unclassified request with tools offered still needs tools",
       [](RequestFacts& f) {
         f.classified = false;
         f.tools_offered = true;
       },
       NoChange,
       "offered-tools",
       "local_tool",
       "tool-local:ok, cheap:ok, premium:tier_bounds",
       {"could not be classified"}},
      {"unclassified request skips complexity rules",
       [](RequestFacts& f) {
         f.classified = false;
         f.complexity = 0.95;
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:ok, premium:tier_bounds",
       {"could not be classified"}},
      {"medium complexity starts at cheap cloud",
       [](RequestFacts& f) { f.complexity = 0.5; },
       NoChange,
       "medium",
       "cloud_cheap",
       "cheap:ok, premium:tier_bounds",
       {"complexity 0.50 >= 0.40", "complexity 0.50 < 0.70"}},
      {"hard request from a paid user goes premium",
       [](RequestFacts& f) {
         f.complexity = 0.8;
         f.user_tier = UserTier::kPaid;
       },
       NoChange,
       "hard",
       "cloud_premium",
       "premium:ok",
       {"complexity 0.80 >= 0.70"}},
      {"hard request from a free user is capped at cheap cloud",
       [](RequestFacts& f) { f.complexity = 0.8; },
       NoChange,
       "hard",
       "cloud_cheap",
       "cheap:ok, premium:tier_bounds",
       {"starting tier lowered from cloud_premium to cloud_cheap (highest allowed)"}},
      {"personal data stays local whatever the complexity",
       [](RequestFacts& f) {
         f.pii = true;
         f.complexity = 0.9;
         f.user_tier = UserTier::kPaid;
       },
       NoChange,
       "pii-local",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:local_only, premium:local_only",
       {"local tiers only: rule 'pii-local' keeps the request on local tiers"}},
      {"priority quality leans to the strongest tier",
       [](RequestFacts& f) {
         f.hints.priority = Priority::kQuality;
         f.user_tier = UserTier::kPaid;
       },
       NoChange,
       "quality",
       "cloud_premium",
       "premium:ok",
       {"priority quality"}},
      {"byok goes straight to cloud and ignores the operator's budget",
       [](RequestFacts& f) { f.user_tier = UserTier::kByok; },
       [](RuntimeView& v) {
         v.budget.tenant_remaining = 0;
         v.budget.global_remaining = 0;
         v.budget.free_local_only = true;
         v.budget.paid_local_only = true;
       },
       "default",
       "cloud_cheap",
       "cheap:ok, premium:ok",
       {"byok caller: straight to cloud tier cloud_cheap"}},
      {"byok with a local_only hint stays local",
       [](RequestFacts& f) {
         f.user_tier = UserTier::kByok;
         f.hints.local_only = true;
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:local_only, premium:local_only",
       {"the request's local_only hint"}},
      {"context over the local window goes to a larger one",
       [](RequestFacts& f) { f.prompt_tokens = 5000; },
       NoChange,
       "default",
       "local_fast",
       "tiny:context_length, tiny-coder:context_length, cheap:ok, premium:tier_bounds",
       {}},
      {"context over every window in the chain adds a larger-context tier",
       [](RequestFacts& f) {
         f.prompt_tokens = 5000;
         f.hints.max_tier = "local_tool";
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:context_length, tiny-coder:context_length, cheap:tier_bounds, "
       "premium:tier_bounds, tool-local:ok",
       {"hint max_tier local_tool", "adding larger-context backends: tool-local"}},
      {"max_tokens counts towards the context",
       [](RequestFacts& f) {
         f.prompt_tokens = 3000;
         f.max_tokens = 2000;
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:context_length, tiny-coder:context_length, cheap:ok, premium:tier_bounds",
       {}},
      {"streaming skips backends that cannot stream",
       [](RequestFacts& f) { f.streaming = true; },
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:streaming, cheap:ok, premium:tier_bounds",
       {}},
      {"personal data with tools: nothing local has tools",
       [](RequestFacts& f) {
         f.pii = true;
         f.tools_offered = true;
       },
       NoChange,
       "pii-local",
       "local_fast",
       "tiny:tools, tiny-coder:tools, cheap:local_only, premium:tier_bounds",
       {}},
      {"open circuit is skipped; half-open is a trial",
       [](RequestFacts&) {},
       [](RuntimeView& v) {
         v.breakers["tiny"] = BreakerState::kOpen;
         v.breakers["tiny-coder"] = BreakerState::kHalfOpen;
       },
       "default",
       "local_fast",
       "tiny:circuit_open, tiny-coder:ok, cheap:ok, premium:tier_bounds",
       {}},
      {"tenant budget spent: cloud out, local still reachable",
       [](RequestFacts&) {},
       [](RuntimeView& v) { v.budget.tenant_remaining = 0; },
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:budget, premium:tier_bounds",
       {}},
      {"global budget too small for the worst case",
       [](RequestFacts& f) { f.user_tier = UserTier::kPaid; },
       [](RuntimeView& v) { v.budget.global_remaining = 1000; },
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:budget, premium:budget",
       {}},
      {"budget degradation: free users local-only",
       [](RequestFacts&) {},
       [](RuntimeView& v) { v.budget.free_local_only = true; },
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:budget_degraded, premium:tier_bounds",
       {"free users are local-only"}},
      {"budget degradation of free users leaves paid users alone",
       [](RequestFacts& f) { f.user_tier = UserTier::kPaid; },
       [](RuntimeView& v) { v.budget.free_local_only = true; },
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:ok, premium:ok",
       {}},
      {"offline: no cloud at all; a cloud start becomes the strongest local tier",
       [](RequestFacts& f) { f.complexity = 0.5; },
       [](RuntimeView& v) { v.offline = true; },
       "medium",
       "local_tool",
       "tool-local:ok, cheap:offline, premium:tier_bounds",
       {"local tiers only: offline mode: no cloud tier",
        "cloud tiers are out: starting at local tier local_tool instead of cloud_cheap"}},
      {"spent tenant budget: a cloud start becomes local",
       [](RequestFacts& f) { f.complexity = 0.5; },
       [](RuntimeView& v) { v.budget.tenant_remaining = 0; },
       "medium",
       "local_tool",
       "tool-local:ok, cheap:budget, premium:tier_bounds",
       {"the tenant's daily budget is spent"}},
      {"degraded free user with a hard request is served locally",
       [](RequestFacts& f) { f.complexity = 0.9; },
       [](RuntimeView& v) { v.budget.free_local_only = true; },
       "hard",
       "local_tool",
       "tool-local:ok, cheap:budget_degraded, premium:tier_bounds",
       {}},
      {"daily cloud-fallback limit blocks local -> cloud",
       [](RequestFacts& f) { f.user_tier = UserTier::kPaid; },
       [](RuntimeView& v) { v.budget.cloud_fallbacks_exhausted = true; },
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:cloud_fallback_limit, premium:cloud_fallback_limit",
       {}},
      {"cloud-fallback limit does not touch requests that start in cloud",
       [](RequestFacts& f) {
         f.user_tier = UserTier::kPaid;
         f.complexity = 0.5;
       },
       [](RuntimeView& v) { v.budget.cloud_fallbacks_exhausted = true; },
       "medium",
       "cloud_cheap",
       "cheap:ok, premium:ok",
       {}},
      {"request cost hint",
       [](RequestFacts& f) {
         f.user_tier = UserTier::kPaid;
         f.hints.max_cost_nano_usd = 200'000;  // cheap's worst case is 172'350
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:ok, premium:cost_limit",
       {}},
      {"fallback cost limit stops expensive fallbacks",
       [](RequestFacts& f) {
         f.user_tier = UserTier::kPaid;
         f.max_tokens = 100'000;  // premium: 100k x $15/M = $1.50 > $1
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:context_length, tiny-coder:context_length, cheap:ok, premium:fallback_cost_limit",
       {}},
      {"escalation starts one tier up",
       [](RequestFacts& f) { f.escalate_from_tier = "local_fast"; },
       NoChange,
       "default",
       "local_tool",
       "tool-local:ok, cheap:ok, premium:tier_bounds",
       {"escalation: the earlier answer came from local_fast"}},
      {"hint min_tier above the user tier is clamped",
       [](RequestFacts& f) { f.hints.min_tier = "cloud_premium"; },
       NoChange,
       "default",
       "cloud_cheap",
       "cheap:ok, premium:tier_bounds",
       {"hint min_tier cloud_premium is above what free users may use; using cloud_cheap"}},
      {"hint max_tier keeps a paid request local",
       [](RequestFacts& f) {
         f.user_tier = UserTier::kPaid;
         f.hints.max_tier = "local_tool";
       },
       NoChange,
       "default",
       "local_fast",
       "tiny:ok, tiny-coder:ok, cheap:tier_bounds, premium:tier_bounds",
       {}},
  };
  return *cases;
}

TEST(DecideTest, Table) {
  const Policy policy = TestPolicy();
  for (const DecideCase& c : DecideCases()) {
    SCOPED_TRACE(c.name);
    RequestFacts facts = Chat();
    c.facts(facts);
    RuntimeView view;
    c.view(view);
    absl::StatusOr<Decision> d = Decide(policy, facts, view);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->rule, c.rule);
    EXPECT_EQ(d->start_tier, c.start_tier);
    EXPECT_EQ(Summary(*d), c.candidates);
    EXPECT_EQ(d->policy_version, policy.version);
    const std::string reasons = absl::StrJoin(d->reasons, "\n");
    for (const std::string& r : c.reasons) EXPECT_THAT(reasons, HasSubstr(r));
    for (const Candidate& cand : d->candidates) {
      EXPECT_FALSE(cand.reason.empty()) << cand.backend;
      EXPECT_EQ(cand.eligible, cand.blocked_by.empty()) << cand.backend;
    }
  }
}

TEST(DecideTest, CandidateDetails) {
  const Policy policy = TestPolicy();
  RequestFacts f = Chat();
  f.user_tier = UserTier::kPaid;
  f.task = TaskType::kCode;
  RuntimeView view;
  view.breakers["tiny-coder"] = BreakerState::kHalfOpen;
  ASSERT_OK_AND_ASSIGN(Decision d, Decide(policy, f, view));
  ASSERT_EQ(d.candidates.size(), 4u);
  const Candidate& coder = d.candidates[0];
  EXPECT_EQ(coder.backend, "tiny-coder");
  EXPECT_EQ(coder.model, "tiny-coder");
  EXPECT_EQ(coder.circuit_state, BreakerState::kHalfOpen);
  EXPECT_THAT(coder.reason, HasSubstr("primary: tier local_fast"));
  EXPECT_THAT(coder.reason, HasSubstr("code model"));
  EXPECT_THAT(coder.reason, HasSubstr("half-open"));
  EXPECT_FALSE(coder.fallback);
  EXPECT_EQ(coder.worst_case_nano_usd, 0);

  const Candidate& cheap = d.candidates[2];
  EXPECT_TRUE(cheap.fallback);
  EXPECT_TRUE(cheap.cloud_fallback);
  EXPECT_EQ(cheap.location, TierLocation::kCloud);
  // The prompt's bound, 125 tokens x $0.15/M + 256 x $0.60/M = 18750 + 153600 nano.
  EXPECT_EQ(cheap.worst_case_nano_usd, 172'350);
  EXPECT_THAT(cheap.reason, HasSubstr("fallback: tier cloud_cheap in the chain of local_fast"));
  EXPECT_EQ(d.max_tokens, 256);
  EXPECT_EQ(d.context_tokens_needed, 356);
  EXPECT_EQ(d.max_extra_fallback_cost_nano_usd, kNanoPerUsd);
  ASSERT_NE(d.FirstEligible(), nullptr);
  EXPECT_EQ(d.FirstEligible()->backend, "tiny-coder");
}

TEST(DecideTest, WorstCaseUsesTheLargerOfTheEstimateAndTheBound) {
  const Policy policy = TestPolicy();
  // cloud_cheap: $0.15/M in, $0.60/M out, 256 max tokens (153'600 nano).
  struct Row {
    int64_t estimate;
    int64_t bound;
    NanoUsd cheap_worst_case;
  };
  for (const Row& row : {Row{100, 125, 172'350}, Row{100, 0, 168'600}, Row{400, 125, 213'600},
                         Row{100, 10'000, 1'653'600}}) {
    RequestFacts f = Chat();
    f.prompt_tokens = row.estimate;
    f.prompt_token_bound = row.bound;
    ASSERT_OK_AND_ASSIGN(Decision d, Decide(policy, f, RuntimeView{}));
    ASSERT_EQ(d.candidates.size(), 4u);
    EXPECT_EQ(d.candidates[2].backend, "cheap");
    EXPECT_EQ(d.candidates[2].worst_case_nano_usd, row.cheap_worst_case)
        << row.estimate << " / " << row.bound;
  }
}

TEST(DecideTest, DegradedModesAreListed) {
  const Policy policy = TestPolicy();
  RuntimeView view;
  view.offline = true;
  view.budget.free_local_only = true;
  view.budget.cloud_fallbacks_exhausted = true;
  ASSERT_OK_AND_ASSIGN(Decision d, Decide(policy, Chat(), view));
  EXPECT_THAT(d.degraded,
              ::testing::ElementsAre("offline", "budget_free_local_only", "cloud_fallback_limit"));
}

TEST(DecideTest, PolicyOfflineWorksLikeRuntimeOffline) {
  YAML::Node n = YAML::Load(kTestPolicyYaml);
  n["offline"] = true;
  ASSERT_OK_AND_ASSIGN(Policy policy, ParsePolicyText(YAML::Dump(n)));
  RequestFacts f = Chat();
  f.complexity = 0.5;
  ASSERT_OK_AND_ASSIGN(Decision d, Decide(policy, f, RuntimeView{}));
  EXPECT_EQ(Summary(d), "tool-local:ok, cheap:offline, premium:tier_bounds");
  EXPECT_THAT(d.degraded, Contains("offline"));
}

TEST(DecideTest, OfflineRuleConditionAndCostPriorityOrdering) {
  YAML::Node n = YAML::Load(kTestPolicyYaml);
  // A second, cheaper cloud_cheap backend listed after the first one.
  YAML::Node b = YAML::Clone(n["backends"][3]);
  b["name"] = "cheaper";
  b["price"]["input_usd_per_mtok"] = "0.05";
  b["price"]["output_usd_per_mtok"] = "0.10";
  n["backends"].push_back(b);
  // Offline requests go to the tool tier (a rule on the offline condition).
  YAML::Node rule;
  rule["name"] = "offline-rule";
  rule["when"]["offline"] = true;
  rule["tier"] = "local_tool";
  YAML::Node rules(YAML::NodeType::Sequence);
  rules.push_back(rule);
  for (const YAML::Node& r : n["rules"]) rules.push_back(r);
  n["rules"] = rules;
  ASSERT_OK_AND_ASSIGN(Policy policy, ParsePolicyText(YAML::Dump(n)));

  RequestFacts f = Chat();
  f.complexity = 0.5;
  f.user_tier = UserTier::kPaid;
  ASSERT_OK_AND_ASSIGN(Decision balanced, Decide(policy, f, RuntimeView{}));
  EXPECT_EQ(Summary(balanced), "cheap:ok, cheaper:ok, premium:ok");
  f.hints.priority = Priority::kCost;
  ASSERT_OK_AND_ASSIGN(Decision cost, Decide(policy, f, RuntimeView{}));
  EXPECT_EQ(Summary(cost), "cheaper:ok, cheap:ok, premium:ok");

  RuntimeView offline;
  offline.offline = true;
  ASSERT_OK_AND_ASSIGN(Decision off, Decide(policy, f, offline));
  EXPECT_EQ(off.rule, "offline-rule");
  EXPECT_EQ(Summary(off), "tool-local:ok, cheaper:offline, cheap:offline, premium:offline");
}

TEST(DecideTest, RejectsImpossibleFacts) {
  const Policy policy = TestPolicy();
  struct Case {
    const char* name;
    std::function<void(RequestFacts&)> edit;
    absl::StatusCode code;
    const char* message;
  };
  const Case cases[] = {
      {"complexity above 1", [](RequestFacts& f) { f.complexity = 1.5; },
       absl::StatusCode::kInvalidArgument, "complexity 1.5 is outside 0..1"},
      {"complexity NaN", [](RequestFacts& f) { f.complexity = std::nan(""); },
       absl::StatusCode::kInvalidArgument, "outside 0..1"},
      {"negative tokens", [](RequestFacts& f) { f.prompt_tokens = -1; },
       absl::StatusCode::kInvalidArgument, "negative"},
      {"zero max_tokens", [](RequestFacts& f) { f.max_tokens = 0; },
       absl::StatusCode::kInvalidArgument, "max_tokens 0 is outside 1..1048576"},
      {"unknown hint tier", [](RequestFacts& f) { f.hints.min_tier = "gold"; },
       absl::StatusCode::kInvalidArgument, "hints.min_tier: unknown tier 'gold'; tiers are: "},
      {"hint bounds crossed",
       [](RequestFacts& f) {
         f.hints.min_tier = "cloud_cheap";
         f.hints.max_tier = "local_fast";
       },
       absl::StatusCode::kInvalidArgument, "hints.min_tier 'cloud_cheap' is above"},
      {"negative cost hint", [](RequestFacts& f) { f.hints.max_cost_nano_usd = -1; },
       absl::StatusCode::kInvalidArgument, "max_cost_usd"},
      {"unknown escalation tier", [](RequestFacts& f) { f.escalate_from_tier = "x"; },
       absl::StatusCode::kInvalidArgument, "escalate_from: unknown tier 'x'"},
      {"escalation from the top", [](RequestFacts& f) { f.escalate_from_tier = "cloud_premium"; },
       absl::StatusCode::kFailedPrecondition, "highest tier 'cloud_premium'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RequestFacts f = Chat();
    c.edit(f);
    EXPECT_THAT(Decide(policy, f, RuntimeView{}), StatusIs(c.code, HasSubstr(c.message)));
  }
}

TEST(DecideTest, NoEligibleCandidateStatusPicksTheRightCode) {
  const Policy policy = TestPolicy();
  struct Case {
    const char* name;
    std::function<void(RequestFacts&)> facts;
    std::function<void(RuntimeView&)> view;
    absl::StatusCode code;
    const char* reason;
  };
  const Case cases[] = {
      {"capabilities",
       [](RequestFacts& f) {
         f.pii = true;
         f.tools_offered = true;
       },
       NoChange, absl::StatusCode::kFailedPrecondition, "no_eligible_backend"},
      {"open circuits", [](RequestFacts& f) { f.complexity = 0.5; },
       [](RuntimeView& v) { v.breakers["cheap"] = BreakerState::kOpen; },
       absl::StatusCode::kUnavailable, "circuit_open"},
      {"budget", [](RequestFacts& f) { f.complexity = 0.5; },
       [](RuntimeView& v) { v.budget.tenant_remaining = 1000; },
       absl::StatusCode::kResourceExhausted, "budget"},
      {"offline, and no local window is large enough",
       [](RequestFacts& f) { f.prompt_tokens = 10'000; }, [](RuntimeView& v) { v.offline = true; },
       absl::StatusCode::kUnavailable, "offline"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RequestFacts f = Chat();
    c.facts(f);
    RuntimeView view;
    c.view(view);
    ASSERT_OK_AND_ASSIGN(Decision d, Decide(policy, f, view));
    ASSERT_EQ(d.FirstEligible(), nullptr) << Summary(d);
    const absl::Status s = NoEligibleCandidateStatus(d);
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_EQ(ErrorReason(s), c.reason);
    EXPECT_THAT(std::string(s.message()), HasSubstr("no backend can serve this request: "));
    EXPECT_THAT(absl::StrJoin(d.reasons, "\n"), HasSubstr("none of the"));
  }
}

}  // namespace
}  // namespace tiermesh::router
