// The router's routing policy: the YAML file that says which tiers and
// backends exist, which rule sends a request where, how to fall back, what
// may be spent and who may call. ParsePolicy turns the YAML tree into a
// validated, immutable Policy; every problem is an error naming the key path
// and position ("rules[2].tier: unknown tier 'cloud_prem' (line 40, column 11)").
//
//   absl::StatusOr<Policy> policy =
//       config::LoadConfigFile(path, config::ProcessEnv(), ParsePolicy);   // main
//   absl::StatusOr<Policy> policy = ParsePolicyText(yaml_text);             // tests
//   policy->version;   // "mesh-3f9a0c41d2e7": changes whenever the content does
//
// The file, in short (deploy/config/router.yaml is a complete example):
//
//   name: mesh                       # optional; prefixes the version
//   offline: false                   # true: no cloud tier at all
//   classifier: {endpoint: "127.0.0.1:50051", timeout: 500ms}
//   defaults: {max_tokens: 512, priority: balanced}
//   tiers:                           # ordered from cheapest/weakest to strongest
//     - {name: local_fast, location: local}
//     - {name: cloud_cheap, location: cloud}
//   backends:
//     - name: worker-tiny
//       tier: local_fast
//       endpoints: ["127.0.0.1:50052"]          # replicas, balanced by reported load
//       model: tiny
//       price: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}
//       capabilities: {tools: false, max_context_tokens: 4096, streaming: true, code: false}
//   fallback_chains:                 # tier -> tiers tried after it (default: the tiers above it)
//     local_fast: [cloud_cheap]
//   rules:                           # first match wins; the last rule must match everything
//     - name: pii-stays-local
//       when: {pii: true}
//       tier: local_fast
//       local_only: true
//     - name: default
//       tier: local_fast
//   user_tiers:                      # bounds per user tier (hints are clamped into them)
//     free: {max_tier: cloud_cheap}
//   resilience:
//     attempt_timeout: 30s
//     max_attempts: 3
//     max_extra_fallback_cost_usd: 0.05
//     retry_budget: {ratio: 0.2, min_per_second: 1, window: 10s}
//     breaker: {consecutive_failures: 5, failure_ratio: 0.5, min_requests: 20,
//               window: 30s, open_for: 10s, half_open_probes: 1}
//   escalation: {history_ttl: 1h, history_max_entries: 100000, history_max_mib: 64}
//   load_polling: {interval: 1s, timeout: 500ms, max_age: 5s}   # GetLoad of every endpoint
//   budgets:
//     global_daily_usd: 50
//     default_tenant_daily_usd: 5
//     degrade: {free_local_only_at: 0.8, paid_local_only_at: 0.95}
//     daily_cloud_fallback_limit: 1000
//   callers:
//     allow_anonymous: false
//     anonymous: {tenant: anonymous, user_tier: free}
//     keys:
//       - {name: ci, sha256: "<64 hex>", tenant: acme, user_tier: paid, daily_budget_usd: 10}
//
// Rule conditions (`when`, all must hold; a missing one matches anything):
//   min_complexity / max_complexity    complexity >= min, complexity < max (0..1)
//   task: [chat, tool, code, math, reasoning]
//   min_context_tokens / max_context_tokens   approx prompt tokens >= min, <= max
//   user_tier: [free, paid, byok]
//   pii, tools_offered, streaming, local_only (the hint), offline: true|false
//   priority: [cost, balanced, quality, latency]     (the hint; unset = defaults.priority)
// Conditions on task or complexity never match when the request could not be
// classified.
#ifndef TIERMESH_SERVICES_ROUTER_POLICY_H_
#define TIERMESH_SERVICES_ROUTER_POLICY_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "yaml-cpp/yaml.h"

#include "services/common/config/env.h"
#include "services/router/money.h"
#include "services/router/types.h"

namespace tiermesh::router {

struct TierConfig {
  std::string name;
  TierLocation location = TierLocation::kLocal;
};

struct Capabilities {
  bool tools = false;
  // Context window in tokens (prompt + output).
  int64_t max_context_tokens = 0;
  bool streaming = true;
  // A model specialised for code: preferred for code tasks within its tier.
  bool code = false;
};

struct BreakerSettings {
  // Open after this many failures in a row.
  int consecutive_failures = 5;
  // ...or when failures / attempts >= failure_ratio over `window`, once at
  // least min_requests attempts were seen in it.
  double failure_ratio = 0.5;
  int min_requests = 20;
  absl::Duration window = absl::Seconds(30);
  // Cool-down before half-open probes.
  absl::Duration open_for = absl::Seconds(10);
  // Probes allowed at once while half-open; one success closes.
  int half_open_probes = 1;
};

struct RetryBudgetSettings {
  // Retries (every attempt after a request's first) may be at most this
  // share of requests over `window`...
  double ratio = 0.2;
  // ...but this many per second are always allowed (low traffic).
  double min_per_second = 1.0;
  absl::Duration window = absl::Seconds(10);
};

struct BackendConfig {
  std::string name;
  std::string tier;
  std::vector<std::string> endpoints;
  // Model name as the backend's ListModels reports it.
  std::string model;
  Price price;
  Capabilities capabilities;
  // Overrides resilience.breaker for this backend.
  absl::optional<BreakerSettings> breaker;
};

struct RuleConditions {
  absl::optional<double> min_complexity;
  absl::optional<double> max_complexity;
  std::vector<TaskType> tasks;
  absl::optional<int64_t> min_context_tokens;
  absl::optional<int64_t> max_context_tokens;
  std::vector<UserTier> user_tiers;
  absl::optional<bool> pii;
  absl::optional<bool> tools_offered;
  absl::optional<bool> streaming;
  absl::optional<bool> local_only;
  absl::optional<bool> offline;
  std::vector<Priority> priorities;

  bool MatchesEverything() const;
};

struct Rule {
  std::string name;
  RuleConditions when;
  // Tier to start at.
  std::string tier;
  // Keep the request on local tiers (e.g. for personal data).
  bool local_only = false;
};

// Bounds for one user tier; empty: no bound.
struct UserTierPolicy {
  std::string min_tier;
  std::string max_tier;
};

struct ClassifierSettings {
  std::string endpoint;
  absl::Duration timeout = absl::Milliseconds(500);
};

struct Defaults {
  // Used for worst-case cost and the context check when a request sets none.
  int64_t max_tokens = 512;
  Priority priority = Priority::kBalanced;
};

struct ResiliencePolicy {
  absl::Duration attempt_timeout = absl::Seconds(30);
  int max_attempts = 3;
  // Most a request may spend on attempts after its starting tier (worst case).
  absl::optional<Money> max_extra_fallback_cost;
  // Most one request may cost, fallbacks included (a hint can lower it).
  absl::optional<Money> max_request_cost;
  RetryBudgetSettings retry_budget;
  BreakerSettings breaker;
};

// The request history behind escalate_from (request_history.h). Read at
// startup; a reload that changes it applies after a restart.
struct EscalationSettings {
  absl::Duration history_ttl = absl::Hours(1);
  int64_t history_max_entries = 100000;
  int64_t history_max_mib = 64;
};

// GetLoad polling of every backend endpoint (load_poller.h). Read at startup,
// as above.
struct LoadPollingSettings {
  absl::Duration interval = absl::Seconds(1);
  // Deadline of each GetLoad call.
  absl::Duration timeout = absl::Milliseconds(500);
  // Older reports are ignored; more than the interval.
  absl::Duration max_age = absl::Seconds(5);
};

struct BudgetPolicy {
  Money global_daily;
  absl::optional<Money> default_tenant_daily;
  // Share of the global cap (spent + reserved) at which free, then paid,
  // users become local-only. byok is never degraded.
  double free_local_only_at = 0.8;
  double paid_local_only_at = 0.95;
  // Local failures sent to cloud per UTC day; unset: no limit.
  absl::optional<int64_t> daily_cloud_fallback_limit;
};

struct CallerKey {
  // Label for logs and Explain (never the key).
  std::string name;
  std::array<uint8_t, 32> sha256{};
  std::string tenant;
  UserTier user_tier = UserTier::kFree;
  absl::optional<Money> daily_budget;
};

struct AnonymousCaller {
  std::string tenant = "anonymous";
  UserTier user_tier = UserTier::kFree;
  absl::optional<Money> daily_budget;
};

struct CallerPolicy {
  bool allow_anonymous = false;
  AnonymousCaller anonymous;
  std::vector<CallerKey> keys;
};

struct Policy {
  std::string name;
  // "<name>-<12 hex>" (or the hex alone): sha256 of the parsed YAML content.
  std::string version;
  bool offline = false;
  ClassifierSettings classifier;
  Defaults defaults;
  std::vector<TierConfig> tiers;
  std::vector<BackendConfig> backends;
  // Complete: every tier has an entry (possibly empty).
  std::map<std::string, std::vector<std::string>> fallback_chains;
  std::vector<Rule> rules;
  // Complete: every user tier has an entry.
  std::map<UserTier, UserTierPolicy> user_tiers;
  ResiliencePolicy resilience;
  EscalationSettings escalation;
  LoadPollingSettings load_polling;
  BudgetPolicy budgets;
  CallerPolicy callers;
  // Derived: the daily cap of every tenant named in `callers` that has one.
  std::map<std::string, NanoUsd> tenant_daily_budgets;

  // Lookups; nullptr / -1 when unknown.
  const TierConfig* FindTier(absl::string_view tier) const;
  int TierIndex(absl::string_view tier) const;
  const BackendConfig* FindBackend(absl::string_view backend) const;
  // The breaker settings that apply to `backend`.
  const BreakerSettings& BreakerFor(const BackendConfig& backend) const;
};

// Validates and builds a Policy from a YAML tree (the `parse` argument of
// config::LoadConfigFile / LoadConfigText). INVALID_ARGUMENT naming the path
// on any unknown key, bad value or inconsistency. Never throws.
[[nodiscard]] absl::StatusOr<Policy> ParsePolicy(const YAML::Node& root);

// LoadConfigText(text, source_name, env, ParsePolicy): for tests and reloads.
[[nodiscard]] absl::StatusOr<Policy> ParsePolicyText(
    absl::string_view text, absl::string_view source_name = "policy",
    const config::EnvLookup& env = config::MapEnv({}));

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_POLICY_H_
