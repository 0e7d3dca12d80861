#include "services/router/decide.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include "services/common/status/status.h"

namespace tiermesh::router {
namespace {

constexpr int64_t kMaxTokensLimit = 1'048'576;

std::string TierList(const Policy& policy) {
  std::vector<std::string> names;
  names.reserve(policy.tiers.size());
  for (const TierConfig& t : policy.tiers) names.push_back(t.name);
  return absl::StrJoin(names, ", ");
}

absl::Status CheckHintTier(const Policy& policy, absl::string_view field, const std::string& tier) {
  if (tier.empty() || policy.FindTier(tier) != nullptr) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": unknown tier '", tier, "'; tiers are: ", TierList(policy)));
}

absl::Status ValidateFacts(const Policy& policy, const RequestFacts& f) {
  if (f.classified && !(f.complexity >= 0.0 && f.complexity <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("complexity ", f.complexity, " is outside 0..1"));
  }
  if (f.prompt_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt token count ", f.prompt_tokens, " is negative"));
  }
  if (f.max_tokens && (*f.max_tokens < 1 || *f.max_tokens > kMaxTokensLimit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens ", *f.max_tokens, " is outside 1..", kMaxTokensLimit));
  }
  TIERMESH_RETURN_IF_ERROR(CheckHintTier(policy, "hints.min_tier", f.hints.min_tier));
  TIERMESH_RETURN_IF_ERROR(CheckHintTier(policy, "hints.max_tier", f.hints.max_tier));
  TIERMESH_RETURN_IF_ERROR(CheckHintTier(policy, "escalate_from", f.escalate_from_tier));
  if (!f.hints.min_tier.empty() && !f.hints.max_tier.empty() &&
      policy.TierIndex(f.hints.min_tier) > policy.TierIndex(f.hints.max_tier)) {
    return absl::InvalidArgumentError(absl::StrCat("hints.min_tier '", f.hints.min_tier,
                                                   "' is above hints.max_tier '", f.hints.max_tier,
                                                   "'"));
  }
  if (f.hints.max_cost_nano_usd && *f.hints.max_cost_nano_usd < 0) {
    return absl::InvalidArgumentError("hints.max_cost_usd is negative");
  }
  return absl::OkStatus();
}

template <typename T>
bool Contains(const std::vector<T>& list, const T& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string Yes(bool v, absl::string_view yes, absl::string_view no) {
  return std::string(v ? yes : no);
}

// Whether `w` holds for the request; `why` collects each condition that held.
bool Matches(const RuleConditions& w, const RequestFacts& f, Priority priority, bool offline,
             std::vector<std::string>* why) {
  why->clear();
  if (w.min_complexity) {
    if (!f.classified || !(f.complexity >= *w.min_complexity)) return false;
    why->push_back(absl::StrFormat("complexity %.2f >= %.2f", f.complexity, *w.min_complexity));
  }
  if (w.max_complexity) {
    if (!f.classified || !(f.complexity < *w.max_complexity)) return false;
    why->push_back(absl::StrFormat("complexity %.2f < %.2f", f.complexity, *w.max_complexity));
  }
  if (!w.tasks.empty()) {
    if (!f.classified || !Contains(w.tasks, f.task)) return false;
    why->push_back(absl::StrCat("task ", TaskTypeName(f.task)));
  }
  if (w.min_context_tokens) {
    if (f.prompt_tokens < *w.min_context_tokens) return false;
    why->push_back(absl::StrCat("prompt ~", f.prompt_tokens, " tokens >= ", *w.min_context_tokens));
  }
  if (w.max_context_tokens) {
    if (f.prompt_tokens > *w.max_context_tokens) return false;
    why->push_back(absl::StrCat("prompt ~", f.prompt_tokens, " tokens <= ", *w.max_context_tokens));
  }
  if (!w.user_tiers.empty()) {
    if (!Contains(w.user_tiers, f.user_tier)) return false;
    why->push_back(absl::StrCat("user tier ", UserTierName(f.user_tier)));
  }
  if (w.pii) {
    if (f.pii != *w.pii) return false;
    why->push_back(Yes(f.pii, "personal data detected", "no personal data"));
  }
  if (w.tools_offered) {
    if (f.tools_offered != *w.tools_offered) return false;
    why->push_back(Yes(f.tools_offered, "tools offered", "no tools offered"));
  }
  if (w.streaming) {
    if (f.streaming != *w.streaming) return false;
    why->push_back(Yes(f.streaming, "streaming", "not streaming"));
  }
  if (w.local_only) {
    if (f.hints.local_only != *w.local_only) return false;
    why->push_back(Yes(f.hints.local_only, "local_only hint", "no local_only hint"));
  }
  if (w.offline) {
    if (offline != *w.offline) return false;
    why->push_back(Yes(offline, "offline mode", "online"));
  }
  if (!w.priorities.empty()) {
    if (!Contains(w.priorities, priority)) return false;
    why->push_back(absl::StrCat("priority ", PriorityName(priority)));
  }
  return true;
}

struct Block {
  std::string label;
  std::string reason;
};

}  // namespace

const Candidate* Decision::FirstEligible() const {
  for (const Candidate& c : candidates) {
    if (c.eligible) return &c;
  }
  return nullptr;
}

absl::StatusOr<Decision> Decide(const Policy& policy, const RequestFacts& f,
                                const RuntimeView& view) {
  TIERMESH_RETURN_IF_ERROR(ValidateFacts(policy, f));
  const int tier_count = static_cast<int>(policy.tiers.size());
  if (tier_count == 0 || policy.rules.empty()) {
    return absl::FailedPreconditionError("the policy has no tiers or no rules");
  }

  Decision d;
  d.policy_version = policy.version;
  d.user_tier = f.user_tier;
  const bool byok = f.user_tier == UserTier::kByok;
  const Priority priority =
      f.hints.priority == Priority::kUnspecified ? policy.defaults.priority : f.hints.priority;
  const bool offline = policy.offline || view.offline;
  d.max_tokens = f.max_tokens.value_or(policy.defaults.max_tokens);
  d.context_tokens_needed = f.prompt_tokens + d.max_tokens;

  if (offline) d.degraded.push_back("offline");
  if (view.budget.free_local_only) d.degraded.push_back("budget_free_local_only");
  if (view.budget.paid_local_only) d.degraded.push_back("budget_paid_local_only");
  if (view.budget.cloud_fallbacks_exhausted) d.degraded.push_back("cloud_fallback_limit");

  if (!f.classified) {
    d.reasons.push_back(
        "the request could not be classified: rules on task and complexity do not apply");
  }

  // 1. The first matching rule.
  const Rule* rule = nullptr;
  std::vector<std::string> why;
  for (const Rule& r : policy.rules) {
    if (Matches(r.when, f, priority, offline, &why)) {
      rule = &r;
      break;
    }
  }
  if (rule == nullptr) {
    // ParsePolicy guarantees a catch-all last rule.
    return absl::FailedPreconditionError("no policy rule matched (the policy has no catch-all)");
  }
  d.rule = rule->name;
  d.reasons.push_back(absl::StrCat("rule '", rule->name, "' matched (",
                                   why.empty() ? "no conditions" : absl::StrJoin(why, ", "),
                                   "): start at tier ", rule->tier));

  // 3. Tier bounds: the user tier's, then the hints' within them.
  int lo = 0;
  int hi = tier_count - 1;
  const auto bounds_it = policy.user_tiers.find(f.user_tier);
  if (bounds_it != policy.user_tiers.end()) {
    const UserTierPolicy& bounds = bounds_it->second;
    if (!bounds.min_tier.empty()) lo = std::max(lo, policy.TierIndex(bounds.min_tier));
    if (!bounds.max_tier.empty()) hi = std::min(hi, policy.TierIndex(bounds.max_tier));
    if (!bounds.min_tier.empty() || !bounds.max_tier.empty()) {
      d.reasons.push_back(absl::StrCat("user tier ", UserTierName(f.user_tier), " allows tiers ",
                                       policy.tiers[lo].name, " to ", policy.tiers[hi].name));
    }
  }
  const std::string user_tier_name(UserTierName(f.user_tier));
  if (!f.hints.min_tier.empty()) {
    const int m = policy.TierIndex(f.hints.min_tier);
    if (m > hi) {
      d.reasons.push_back(absl::StrCat("hint min_tier ", f.hints.min_tier, " is above what ",
                                       user_tier_name, " users may use; using ",
                                       policy.tiers[hi].name));
      lo = hi;
    } else if (m > lo) {
      d.reasons.push_back(absl::StrCat("hint min_tier ", f.hints.min_tier));
      lo = m;
    }
  }
  if (!f.hints.max_tier.empty()) {
    const int m = policy.TierIndex(f.hints.max_tier);
    if (m < lo) {
      d.reasons.push_back(absl::StrCat("hint max_tier ", f.hints.max_tier,
                                       " is below the lowest tier allowed; using ",
                                       policy.tiers[lo].name));
      hi = lo;
    } else if (m < hi) {
      d.reasons.push_back(absl::StrCat("hint max_tier ", f.hints.max_tier));
      hi = m;
    }
  }

  // Why cloud tiers are out, if they are (the first reason wins for candidates).
  std::vector<Block> local_only;
  if (offline) local_only.push_back({"offline", "offline mode: no cloud tier"});
  if (rule->local_only) {
    local_only.push_back(
        {"local_only", absl::StrCat("rule '", rule->name, "' keeps the request on local tiers")});
  }
  if (f.hints.local_only) {
    local_only.push_back({"local_only", "the request's local_only hint"});
  }
  if (!byok && f.user_tier == UserTier::kFree && view.budget.free_local_only) {
    local_only.push_back(
        {"budget_degraded", "the global budget is nearly spent: free users are local-only"});
  }
  if (!byok && f.user_tier == UserTier::kPaid && view.budget.paid_local_only) {
    local_only.push_back(
        {"budget_degraded", "the global budget is nearly spent: paid users are local-only"});
  }
  if (!byok && view.budget.tenant_remaining && *view.budget.tenant_remaining == 0) {
    local_only.push_back({"budget", "the tenant's daily budget is spent"});
  }
  if (!byok && view.budget.global_remaining && *view.budget.global_remaining == 0) {
    local_only.push_back({"budget", "the global daily budget is spent"});
  }
  for (const Block& b : local_only)
    d.reasons.push_back(absl::StrCat("local tiers only: ", b.reason));

  // 2. The starting tier.
  int start = policy.TierIndex(rule->tier);
  if (!f.escalate_from_tier.empty()) {
    const int from = policy.TierIndex(f.escalate_from_tier);
    if (from + 1 >= tier_count) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot escalate: the earlier answer came from the highest tier '",
                       f.escalate_from_tier, "'"));
    }
    start = from + 1;
    d.escalation = true;
    d.reasons.push_back(absl::StrCat("escalation: the earlier answer came from ",
                                     f.escalate_from_tier, "; trying the next tier up, ",
                                     policy.tiers[start].name));
  }
  if (start < lo) {
    d.reasons.push_back(absl::StrCat("starting tier raised from ", policy.tiers[start].name, " to ",
                                     policy.tiers[lo].name, " (lowest allowed)"));
    start = lo;
  } else if (start > hi) {
    d.reasons.push_back(absl::StrCat("starting tier lowered from ", policy.tiers[start].name,
                                     " to ", policy.tiers[hi].name, " (highest allowed)"));
    start = hi;
  }
  // Cloud is out: start at the strongest allowed local tier instead of a tier
  // that cannot serve (zero-cost tiers stay reachable).
  if (!local_only.empty() && policy.tiers[start].location == TierLocation::kCloud) {
    for (int t = start; t >= lo; --t) {
      if (policy.tiers[t].location == TierLocation::kLocal) {
        d.reasons.push_back(absl::StrCat("cloud tiers are out: starting at local tier ",
                                         policy.tiers[t].name, " instead of ",
                                         policy.tiers[start].name));
        start = t;
        break;
      }
    }
  }
  // 4. byok: straight to cloud, unless the request must stay local.
  if (byok && local_only.empty() && policy.tiers[start].location == TierLocation::kLocal) {
    int cloud = -1;
    for (int t = start; t <= hi; ++t) {
      if (policy.tiers[t].location == TierLocation::kCloud) {
        cloud = t;
        break;
      }
    }
    if (cloud >= 0) {
      start = cloud;
      d.reasons.push_back(absl::StrCat("byok caller: straight to cloud tier ",
                                       policy.tiers[start].name, " (the caller's key pays)"));
    } else {
      d.reasons.push_back("byok caller, but no cloud tier is allowed: staying local");
    }
  }
  d.start_tier = policy.tiers[start].name;

  // 5. Candidate tiers: the start tier, then its chain.
  std::vector<int> tier_order = {start};
  const auto chain_it = policy.fallback_chains.find(d.start_tier);
  if (chain_it != policy.fallback_chains.end()) {
    for (const std::string& t : chain_it->second) {
      const int idx = policy.TierIndex(t);
      if (idx >= 0 && !Contains(tier_order, idx)) tier_order.push_back(idx);
    }
  }
  {
    std::vector<std::string> chain_names;
    for (size_t i = 1; i < tier_order.size(); ++i) {
      chain_names.push_back(policy.tiers[tier_order[i]].name);
    }
    d.reasons.push_back(absl::StrCat(
        "starting tier ", d.start_tier,
        "; fallback chain: ", chain_names.empty() ? "none" : absl::StrJoin(chain_names, ", ")));
  }

  const bool prefer_code = f.classified && f.task == TaskType::kCode;
  const bool needs_tools = f.tools_offered || (f.classified && f.task == TaskType::kTool);
  const int64_t prompt_for_cost = std::max(f.prompt_tokens, f.prompt_token_bound);
  auto worst_case = [&](const BackendConfig& b) {
    return WorstCaseNanoUsd(b.price, prompt_for_cost, d.max_tokens);
  };
  auto backends_of = [&](int tier) {
    std::vector<const BackendConfig*> list;
    for (const BackendConfig& b : policy.backends) {
      if (b.tier == policy.tiers[tier].name) list.push_back(&b);
    }
    if (priority == Priority::kCost) {
      std::stable_sort(list.begin(), list.end(),
                       [&](const BackendConfig* a, const BackendConfig* b) {
                         return worst_case(*a) < worst_case(*b);
                       });
    }
    if (prefer_code) {
      std::stable_partition(list.begin(), list.end(),
                            [](const BackendConfig* b) { return b->capabilities.code; });
    }
    return list;
  };

  struct Entry {
    const BackendConfig* backend;
    int tier;
    bool larger_context;
  };
  // A backend that could take the request's context if nothing else stopped it.
  auto usable_window = [&](int tier, const BackendConfig& b) {
    return tier >= lo && tier <= hi &&
           (policy.tiers[tier].location == TierLocation::kLocal || local_only.empty()) &&
           b.capabilities.max_context_tokens >= d.context_tokens_needed;
  };
  std::vector<Entry> entries;
  bool any_fits = false;
  for (int t : tier_order) {
    for (const BackendConfig* b : backends_of(t)) {
      entries.push_back({b, t, false});
      if (usable_window(t, *b)) any_fits = true;
    }
  }
  if (!any_fits) {
    std::vector<std::string> added;
    for (int t = lo; t <= hi; ++t) {
      if (Contains(tier_order, t)) continue;
      for (const BackendConfig* b : backends_of(t)) {
        if (usable_window(t, *b)) {
          entries.push_back({b, t, true});
          added.push_back(b->name);
        }
      }
    }
    if (added.empty()) {
      d.reasons.push_back(absl::StrCat("no allowed backend has a context window for ~",
                                       d.context_tokens_needed, " tokens"));
    } else {
      d.reasons.push_back(absl::StrCat(
          "no backend in the chain has a context window for ~", d.context_tokens_needed,
          " tokens; adding larger-context backends: ", absl::StrJoin(added, ", ")));
    }
  }

  // 6. Eligibility.
  absl::optional<NanoUsd> request_cap = f.hints.max_cost_nano_usd;
  if (!byok && policy.resilience.max_request_cost) {
    const NanoUsd policy_cap = policy.resilience.max_request_cost->nano_usd;
    request_cap = request_cap ? std::min(*request_cap, policy_cap) : policy_cap;
  }
  d.max_request_cost_nano_usd = request_cap;
  if (!byok && policy.resilience.max_extra_fallback_cost) {
    d.max_extra_fallback_cost_nano_usd = policy.resilience.max_extra_fallback_cost->nano_usd;
  }
  const bool start_is_local = policy.tiers[start].location == TierLocation::kLocal;

  auto check = [&](const Entry& e, Candidate& c) -> absl::optional<Block> {
    const BackendConfig& b = *e.backend;
    const std::string& tier = policy.tiers[e.tier].name;
    if (e.tier > hi) {
      return Block{"tier_bounds", absl::StrCat("tier ", tier, " is above the highest allowed (",
                                               policy.tiers[hi].name, ")")};
    }
    if (e.tier < lo) {
      return Block{"tier_bounds", absl::StrCat("tier ", tier, " is below the lowest allowed (",
                                               policy.tiers[lo].name, ")")};
    }
    if (c.location == TierLocation::kCloud && !local_only.empty()) return local_only.front();
    if (needs_tools && !b.capabilities.tools) {
      return Block{"tools", f.tools_offered
                                ? "tools are offered but this backend does not support tools"
                                : "a tool task needs a tool-capable backend"};
    }
    if (f.streaming && !b.capabilities.streaming) {
      return Block{"streaming", "streaming was asked for but this backend does not stream"};
    }
    if (d.context_tokens_needed > b.capabilities.max_context_tokens) {
      return Block{"context_length",
                   absl::StrCat("needs ~", d.context_tokens_needed, " tokens of context (",
                                f.prompt_tokens, " prompt + ", d.max_tokens,
                                " output); its window is ", b.capabilities.max_context_tokens)};
    }
    if (c.circuit_state == BreakerState::kOpen) {
      return Block{"circuit_open", "circuit open: recent calls to this backend failed"};
    }
    if (request_cap && c.worst_case_nano_usd > *request_cap) {
      return Block{"cost_limit",
                   absl::StrCat("worst-case cost ", FormatUsd(c.worst_case_nano_usd),
                                " is above the request's limit ", FormatUsd(*request_cap))};
    }
    if (!byok && c.fallback && d.max_extra_fallback_cost_nano_usd &&
        c.worst_case_nano_usd > *d.max_extra_fallback_cost_nano_usd) {
      return Block{"fallback_cost_limit",
                   absl::StrCat("worst-case cost ", FormatUsd(c.worst_case_nano_usd),
                                " is above the fallback cost limit ",
                                FormatUsd(*d.max_extra_fallback_cost_nano_usd))};
    }
    if (!byok && c.worst_case_nano_usd > 0) {
      if (view.budget.tenant_remaining && c.worst_case_nano_usd > *view.budget.tenant_remaining) {
        return Block{"budget",
                     absl::StrCat("tenant budget: ", FormatUsd(*view.budget.tenant_remaining),
                                  " left today, worst case ", FormatUsd(c.worst_case_nano_usd))};
      }
      if (view.budget.global_remaining && c.worst_case_nano_usd > *view.budget.global_remaining) {
        return Block{"budget",
                     absl::StrCat("global budget: ", FormatUsd(*view.budget.global_remaining),
                                  " left today, worst case ", FormatUsd(c.worst_case_nano_usd))};
      }
    }
    if (c.cloud_fallback && view.budget.cloud_fallbacks_exhausted) {
      return Block{"cloud_fallback_limit", "the daily limit of cloud fallbacks is reached"};
    }
    return absl::nullopt;
  };

  for (const Entry& e : entries) {
    const BackendConfig& b = *e.backend;
    Candidate c;
    c.backend = b.name;
    c.tier = policy.tiers[e.tier].name;
    c.model = b.model;
    c.location = policy.tiers[e.tier].location;
    const auto breaker = view.breakers.find(b.name);
    c.circuit_state = breaker == view.breakers.end() ? BreakerState::kClosed : breaker->second;
    c.worst_case_nano_usd = worst_case(b);
    c.max_context_tokens = b.capabilities.max_context_tokens;
    c.fallback = e.tier != start || e.larger_context;
    c.cloud_fallback = start_is_local && c.location == TierLocation::kCloud;
    if (absl::optional<Block> block = check(e, c)) {
      c.eligible = false;
      c.blocked_by = block->label;
      c.reason = block->reason;
    } else {
      c.eligible = true;
      if (e.larger_context) {
        c.reason =
            absl::StrCat("fallback: larger context window (", c.max_context_tokens, " tokens)");
      } else if (c.fallback) {
        c.reason = absl::StrCat("fallback: tier ", c.tier, " in the chain of ", d.start_tier);
      } else {
        c.reason = absl::StrCat("primary: tier ", c.tier);
      }
      if (prefer_code && b.capabilities.code) absl::StrAppend(&c.reason, "; code model");
      if (c.circuit_state == BreakerState::kHalfOpen) {
        absl::StrAppend(&c.reason, "; circuit half-open: a trial request");
      }
    }
    d.candidates.push_back(std::move(c));
  }

  size_t eligible = 0;
  for (const Candidate& c : d.candidates) eligible += c.eligible ? 1 : 0;
  if (const Candidate* first = d.FirstEligible()) {
    d.reasons.push_back(absl::StrCat(eligible, " of ", d.candidates.size(),
                                     " candidates eligible; first: ", first->backend, " (",
                                     first->tier, ")"));
  } else {
    d.reasons.push_back(
        absl::StrCat("none of the ", d.candidates.size(), " candidates is eligible"));
  }
  return d;
}

absl::Status NoEligibleCandidateStatus(const Decision& decision) {
  std::set<std::string> labels;
  std::vector<std::string> parts;
  for (const Candidate& c : decision.candidates) {
    if (c.eligible) continue;
    labels.insert(c.blocked_by);
    parts.push_back(absl::StrCat(c.backend, " (", c.tier, "): ", c.reason));
  }
  const std::string message =
      absl::StrCat("no backend can serve this request: ",
                   parts.empty() ? "no candidates" : absl::StrJoin(parts, "; "));
  if (labels.count("circuit_open") != 0) {
    return WithReason(absl::UnavailableError(message), "circuit_open");
  }
  for (const char* label :
       {"budget", "budget_degraded", "cost_limit", "fallback_cost_limit", "cloud_fallback_limit"}) {
    if (labels.count(label) != 0) {
      return WithReason(absl::ResourceExhaustedError(message), label);
    }
  }
  if (labels.count("offline") != 0) return WithReason(absl::UnavailableError(message), "offline");
  return WithReason(absl::FailedPreconditionError(message), "no_eligible_backend");
}

}  // namespace tiermesh::router
