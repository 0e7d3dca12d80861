// The routing decision as a pure function: given the policy, what is known
// about one request and a snapshot of the router's runtime state (breakers,
// budgets, offline), which rule matched and which backends to try, in order,
// each with whether it may serve and why. No I/O: Chat, ChatStream and
// Explain all call Decide and then act on (or just report) the result.
//
//   RequestFacts facts;
//   facts.task = TaskType::kTool;
//   facts.complexity = 0.3;
//   facts.prompt_tokens = 900;
//   facts.tools_offered = true;
//   facts.user_tier = UserTier::kFree;
//   absl::StatusOr<Decision> d = Decide(policy, facts, view);
//   if (!d.ok()) return d.status();                        // bad facts (e.g. unknown hint tier)
//   if (const Candidate* first = d->FirstEligible()) ...;   // try eligible candidates in order
//   else return NoEligibleCandidateStatus(*d);
//
// What Decide applies, in this order (each step leaves a plain-words reason):
//   1. the first rule whose conditions hold picks the starting tier;
//   2. an escalation starts at the tier above the one that served before;
//   3. bounds: the user tier's min/max tier, then the hints' min/max tier
//      clamped into them (a hint can narrow, never widen, what the tier allows);
//   4. when cloud tiers are out (offline, a local-only rule or hint, budget
//      degradation, a spent budget) a cloud starting tier becomes the strongest
//      allowed local tier; byok callers go straight to the first cloud tier at
//      or above the start (unless the request must stay local);
//   5. candidates: the starting tier's backends, then its fallback chain's;
//      within a tier code models first for code tasks, cheapest first for
//      priority=cost, else policy order; when no listed backend's window fits
//      the request, backends of larger context from other allowed tiers follow;
//   6. each candidate is checked: tier bounds, local-only (rule, hint, PII
//      rule, offline, budget degradation or a spent budget), tools (offered tools or a tool
//      task need a tool-capable backend), streaming, context window (prompt +
//      max_tokens), circuit open, worst-case cost against the request's limit,
//      the fallback cost limit, the tenant and global budgets, and the daily
//      cloud-fallback limit. byok requests are not held to the operator's
//      budgets or cost limits (their own key pays), only to their own hint.
#ifndef TIERMESH_SERVICES_ROUTER_DECIDE_H_
#define TIERMESH_SERVICES_ROUTER_DECIDE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"

#include "services/router/money.h"
#include "services/router/policy.h"
#include "services/router/types.h"

namespace tiermesh::router {

struct RoutingHints {
  Priority priority = Priority::kUnspecified;
  // Tier names from the policy; empty: no bound.
  std::string min_tier;
  std::string max_tier;
  bool local_only = false;
  absl::optional<NanoUsd> max_cost_nano_usd;
};

struct RequestFacts {
  // False when the classifier gave no answer: rules on task and complexity
  // then do not match (tools_offered still requires a tool-capable backend).
  bool classified = true;
  TaskType task = TaskType::kUnspecified;
  double complexity = 0.0;  // 0..1
  bool pii = false;
  // Approximate prompt tokens (the classifier's approx_tokens).
  int64_t prompt_tokens = 0;
  // At most this many prompt tokens, whatever the backend's tokenizer
  // (PromptTokenBound); budget reservations use it, so that a provider that
  // counts more tokens than the estimate cannot settle above a cap. 0:
  // unknown, the estimate is used.
  int64_t prompt_token_bound = 0;
  bool tools_offered = false;
  bool streaming = false;
  UserTier user_tier = UserTier::kFree;
  RoutingHints hints;
  // The request's max_tokens; unset: the policy's default.
  absl::optional<int64_t> max_tokens;
  // Escalation: the tier that served the earlier request (empty: none).
  std::string escalate_from_tier;
};

// Budget state as the decision needs it (BudgetStore::View fills it).
struct BudgetView {
  // Left today; unset: no cap.
  absl::optional<NanoUsd> tenant_remaining;
  absl::optional<NanoUsd> global_remaining;
  // Degradation in force (global cap nearly spent).
  bool free_local_only = false;
  bool paid_local_only = false;
  bool cloud_fallbacks_exhausted = false;
};

struct RuntimeView {
  // Backends not listed are closed.
  std::map<std::string, BreakerState> breakers;
  BudgetView budget;
  // Offline at runtime (in addition to the policy's `offline`).
  bool offline = false;
};

struct Candidate {
  std::string backend;
  std::string tier;
  std::string model;
  TierLocation location = TierLocation::kLocal;
  bool eligible = false;
  // Why not, or why it is here ("primary: tier local_fast").
  std::string reason;
  // For ineligible candidates, a short label of what blocked it: "tier_bounds",
  // "local_only", "offline", "budget_degraded", "tools", "streaming",
  // "context_length", "circuit_open", "cost_limit", "fallback_cost_limit",
  // "budget", "cloud_fallback_limit". Empty when eligible.
  std::string blocked_by;
  BreakerState circuit_state = BreakerState::kClosed;
  // max_tokens x output price + prompt (with the policy's margin) x input price.
  NanoUsd worst_case_nano_usd = 0;
  int64_t max_context_tokens = 0;
  // Not in the starting tier.
  bool fallback = false;
  // A cloud backend after a local starting tier: counts against the daily
  // cloud-fallback limit when used.
  bool cloud_fallback = false;
};

struct Decision {
  std::string policy_version;
  std::string rule;
  std::string start_tier;
  UserTier user_tier = UserTier::kFree;
  bool escalation = false;
  // max_tokens used for the context check and the worst case.
  int64_t max_tokens = 0;
  // prompt tokens + max_tokens.
  int64_t context_tokens_needed = 0;
  // Most the request may cost (hint or policy); unset: no limit.
  absl::optional<NanoUsd> max_request_cost_nano_usd;
  // Most the attempts after the starting tier may cost; unset: no limit.
  absl::optional<NanoUsd> max_extra_fallback_cost_nano_usd;
  std::vector<Candidate> candidates;
  // The steps of the decision, in plain words.
  std::vector<std::string> reasons;
  // Degraded modes in force: "offline", "budget_free_local_only",
  // "budget_paid_local_only", "cloud_fallback_limit".
  std::vector<std::string> degraded;

  // The first eligible candidate, or nullptr.
  const Candidate* FirstEligible() const;
};

// INVALID_ARGUMENT for facts no request can have (complexity outside 0..1,
// negative tokens, max_tokens outside 1..1048576, an unknown hint or
// escalation tier, hint min_tier above max_tier, a negative cost limit);
// FAILED_PRECONDITION for an escalation from the highest tier.
[[nodiscard]] absl::StatusOr<Decision> Decide(const Policy& policy, const RequestFacts& facts,
                                              const RuntimeView& view);

// The error to answer when no candidate is eligible: RESOURCE_EXHAUSTED when
// budget or cost limits blocked a candidate, UNAVAILABLE when open circuits or
// offline mode did, else FAILED_PRECONDITION; the message lists every
// candidate's reason.
[[nodiscard]] absl::Status NoEligibleCandidateStatus(const Decision& decision);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_DECIDE_H_
