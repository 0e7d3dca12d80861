#include "services/router/policy.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "services/common/config/loader.h"
#include "services/common/config/schema.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status/status.h"

namespace tiermesh::router {
namespace {

constexpr int64_t kMaxTokensLimit = 1'048'576;
constexpr int64_t kMaxContextLimit = 100'000'000;

// Names end up in metric labels and decisions: keep them short and plain.
absl::Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("must be 1 to 64 characters");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return absl::InvalidArgumentError(
          absl::StrCat("'", name, "' may only contain letters, digits, '_', '-' and '.'"));
    }
  }
  return absl::OkStatus();
}
struct NameCheck {
  absl::Status operator()(const std::string& name) const { return CheckName(name); }
};

// "host:port", "[::1]:port", "dns:///host:port" or "unix:/path".
absl::Status CheckEndpoint(const std::string& endpoint) {
  if (endpoint.empty()) return absl::InvalidArgumentError("endpoint must not be empty");
  for (char c : endpoint) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        !absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("endpoint '", endpoint, "' contains a space or control character"));
    }
  }
  if (absl::StartsWith(endpoint, "unix:")) {
    if (endpoint.size() == 5) return absl::InvalidArgumentError("unix: endpoint needs a path");
    return absl::OkStatus();
  }
  const size_t colon = endpoint.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(endpoint).substr(colon + 1), &port) || port < 1 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("endpoint '", endpoint, "' must be host:port (port 1-65535) or unix:/path"));
  }
  return absl::OkStatus();
}
struct EndpointCheck {
  absl::Status operator()(const std::string& e) const { return CheckEndpoint(e); }
};
struct EndpointListCheck {
  absl::Status operator()(const std::vector<std::string>& list) const {
    if (list.empty()) return absl::InvalidArgumentError("must list at least one endpoint");
    std::set<std::string> seen;
    for (const std::string& e : list) {
      TIERMESH_RETURN_IF_ERROR(CheckEndpoint(e));
      if (!seen.insert(e).second) {
        return absl::InvalidArgumentError(absl::StrCat("endpoint '", e, "' is listed twice"));
      }
    }
    return absl::OkStatus();
  }
};

struct PositiveDuration {
  absl::Duration max;
  absl::Status operator()(absl::Duration d) const {
    if (d <= absl::ZeroDuration()) return absl::InvalidArgumentError("must be positive");
    if (d > max) {
      return absl::InvalidArgumentError(absl::StrCat(
          absl::FormatDuration(d), " is above the maximum ", absl::FormatDuration(max)));
    }
    return absl::OkStatus();
  }
};

// A share in (0, 1].
struct Share {
  absl::Status operator()(double v) const {
    if (!(v > 0.0 && v <= 1.0)) {
      return absl::InvalidArgumentError(absl::StrCat(v, " must be above 0 and at most 1"));
    }
    return absl::OkStatus();
  }
};

// Lower-case or upper-case hex of 32 bytes. The value is never echoed: a key
// pasted here by mistake must not end up in a log.
[[nodiscard]] absl::Status DecodeSha256Hex(const config::Node& node, std::array<uint8_t, 32>* out) {
  if (!node.IsScalar()) {
    return node.Error(absl::StrCat("expected 64 hex digits, got ", node.KindName()));
  }
  const std::string text = node.Scalar();
  if (text.size() != 64) {
    return node.Error(absl::StrCat("expected the 64 hex digits of the key's sha256, got ",
                                   text.size(), " characters (the value is not shown)"));
  }
  for (size_t i = 0; i < 32; ++i) {
    int byte = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = text[2 * i + j];
      int v = 0;
      if (c >= '0' && c <= '9') {
        v = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v = c - 'A' + 10;
      } else {
        return node.Error(
            "expected the 64 hex digits of the key's sha256, found a non-hex character (the "
            "value is not shown)");
      }
      byte = byte * 16 + v;
    }
    (*out)[i] = static_cast<uint8_t>(byte);
  }
  return absl::OkStatus();
}

// A child node of `parent` (by key or index) for errors found after decoding.
// Absent parents or children give a null node (the path still names them):
// yaml-cpp throws when indexing an undefined node.
config::Node At(const config::Node& parent, absl::string_view key) {
  const YAML::Node& yaml = parent.yaml();
  if (yaml.IsDefined() && yaml.IsMap()) {
    const YAML::Node child = yaml[std::string(key)];
    if (child.IsDefined()) return parent.Child(key, child);
  }
  return parent.Child(key, YAML::Node());
}
config::Node At(const config::Node& parent, size_t index) {
  const YAML::Node& yaml = parent.yaml();
  if (yaml.IsDefined() && yaml.IsSequence() && index < yaml.size()) {
    return parent.Element(index, yaml[index]);
  }
  return parent.Element(index, YAML::Node());
}

}  // namespace

// ---- Decoders (argument-dependent lookup from config::ObjectReader). ----

[[nodiscard]] absl::Status Decode(const config::Node& node, TierConfig* out) {
  config::ObjectReader r(node);
  r.Required("name", &out->name, NameCheck());
  r.Required("location", &out->location);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, Price* out) {
  config::ObjectReader r(node);
  Money in;
  Money output;
  r.Required("input_usd_per_mtok", &in);
  r.Required("output_usd_per_mtok", &output);
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  out->input_nano_per_mtok = in.nano_usd;
  out->output_nano_per_mtok = output.nano_usd;
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, Capabilities* out) {
  config::ObjectReader r(node);
  r.Optional("tools", &out->tools);
  r.Required("max_context_tokens", &out->max_context_tokens,
             config::InRange<int64_t>(1, kMaxContextLimit));
  r.Optional("streaming", &out->streaming);
  r.Optional("code", &out->code);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, BreakerSettings* out) {
  config::ObjectReader r(node);
  r.Optional("consecutive_failures", &out->consecutive_failures, config::InRange(1, 1000));
  r.Optional("failure_ratio", &out->failure_ratio, Share());
  r.Optional("min_requests", &out->min_requests, config::InRange(1, 1'000'000));
  r.Optional("window", &out->window, PositiveDuration{absl::Hours(1)});
  r.Optional("open_for", &out->open_for, PositiveDuration{absl::Hours(1)});
  r.Optional("half_open_probes", &out->half_open_probes, config::InRange(1, 1000));
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, RetryBudgetSettings* out) {
  config::ObjectReader r(node);
  r.Optional("ratio", &out->ratio, config::InRange(0.0, 1.0));
  r.Optional("min_per_second", &out->min_per_second, config::InRange(0.0, 1e6));
  r.Optional("window", &out->window, PositiveDuration{absl::Hours(1)});
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, BackendConfig* out) {
  config::ObjectReader r(node);
  r.Required("name", &out->name, NameCheck());
  r.Required("tier", &out->tier, config::NonEmpty());
  r.Required("endpoints", &out->endpoints, EndpointListCheck());
  r.Required("model", &out->model, config::NonEmpty());
  r.Required("price", &out->price);
  r.Required("capabilities", &out->capabilities);
  r.Optional("breaker", &out->breaker);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, RuleConditions* out) {
  config::ObjectReader r(node);
  r.Optional("min_complexity", &out->min_complexity, config::InRange(0.0, 1.0));
  r.Optional("max_complexity", &out->max_complexity, config::InRange(0.0, 1.0));
  r.Optional("task", &out->tasks, config::NonEmpty());
  r.Optional("min_context_tokens", &out->min_context_tokens,
             config::InRange<int64_t>(0, kMaxContextLimit));
  r.Optional("max_context_tokens", &out->max_context_tokens,
             config::InRange<int64_t>(0, kMaxContextLimit));
  r.Optional("user_tier", &out->user_tiers, config::NonEmpty());
  r.Optional("pii", &out->pii);
  r.Optional("tools_offered", &out->tools_offered);
  r.Optional("streaming", &out->streaming);
  r.Optional("local_only", &out->local_only);
  r.Optional("offline", &out->offline);
  r.Optional("priority", &out->priorities, config::NonEmpty());
  r.Validate(
      !out->min_complexity || !out->max_complexity || *out->min_complexity < *out->max_complexity,
      "min_complexity must be below max_complexity");
  r.Validate(!out->min_context_tokens || !out->max_context_tokens ||
                 *out->min_context_tokens <= *out->max_context_tokens,
             "min_context_tokens must not be above max_context_tokens");
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, Rule* out) {
  config::ObjectReader r(node);
  r.Required("name", &out->name, NameCheck());
  r.Optional("when", &out->when);
  r.Required("tier", &out->tier, config::NonEmpty());
  r.Optional("local_only", &out->local_only);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, UserTierPolicy* out) {
  config::ObjectReader r(node);
  r.Optional("min_tier", &out->min_tier);
  r.Optional("max_tier", &out->max_tier);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, ClassifierSettings* out) {
  config::ObjectReader r(node);
  r.Required("endpoint", &out->endpoint, EndpointCheck());
  r.Optional("timeout", &out->timeout, PositiveDuration{absl::Minutes(1)});
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, Defaults* out) {
  config::ObjectReader r(node);
  r.Optional("max_tokens", &out->max_tokens, config::InRange<int64_t>(1, kMaxTokensLimit));
  r.Optional("priority", &out->priority);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, ResiliencePolicy* out) {
  config::ObjectReader r(node);
  r.Optional("attempt_timeout", &out->attempt_timeout, PositiveDuration{absl::Minutes(30)});
  r.Optional("max_attempts", &out->max_attempts, config::InRange(1, 10));
  r.Optional("max_extra_fallback_cost_usd", &out->max_extra_fallback_cost);
  r.Optional("max_request_cost_usd", &out->max_request_cost);
  r.Optional("retry_budget", &out->retry_budget);
  r.Optional("breaker", &out->breaker);
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, EscalationSettings* out) {
  config::ObjectReader r(node);
  r.Optional("history_ttl", &out->history_ttl, PositiveDuration{absl::Hours(24 * 7)});
  r.Optional("history_max_entries", &out->history_max_entries,
             config::InRange<int64_t>(0, 100'000'000));
  r.Optional("history_max_mib", &out->history_max_mib, config::InRange<int64_t>(0, 64 * 1024));
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, LoadPollingSettings* out) {
  config::ObjectReader r(node);
  r.Optional("interval", &out->interval, PositiveDuration{absl::Minutes(10)});
  r.Optional("timeout", &out->timeout, PositiveDuration{absl::Minutes(1)});
  r.Optional("max_age", &out->max_age, PositiveDuration{absl::Hours(1)});
  r.Validate(out->max_age > out->interval,
             "max_age must be longer than interval, or every report would be stale");
  return r.Finish();
}

namespace {
struct Degrade {
  double free_local_only_at = 0.8;
  double paid_local_only_at = 0.95;
};

[[nodiscard]] absl::Status Decode(const config::Node& node, Degrade* out) {
  config::ObjectReader r(node);
  r.Optional("free_local_only_at", &out->free_local_only_at, Share());
  r.Optional("paid_local_only_at", &out->paid_local_only_at, Share());
  r.Validate(out->free_local_only_at <= out->paid_local_only_at,
             "free_local_only_at must not be above paid_local_only_at (free users degrade first)");
  return r.Finish();
}

struct Sha256Digest {
  std::array<uint8_t, 32> bytes{};
};

[[nodiscard]] absl::Status Decode(const config::Node& node, Sha256Digest* out) {
  return DecodeSha256Hex(node, &out->bytes);
}
}  // namespace

[[nodiscard]] absl::Status Decode(const config::Node& node, BudgetPolicy* out) {
  config::ObjectReader r(node);
  r.Required("global_daily_usd", &out->global_daily);
  r.Optional("default_tenant_daily_usd", &out->default_tenant_daily);
  Degrade degrade{out->free_local_only_at, out->paid_local_only_at};
  r.Optional("degrade", &degrade);
  r.Optional("daily_cloud_fallback_limit", &out->daily_cloud_fallback_limit,
             config::InRange<int64_t>(0, int64_t{1} << 40));
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  out->free_local_only_at = degrade.free_local_only_at;
  out->paid_local_only_at = degrade.paid_local_only_at;
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, CallerKey* out) {
  config::ObjectReader r(node);
  Sha256Digest digest;
  r.Required("name", &out->name, NameCheck());
  r.Required("sha256", &digest);
  r.Required("tenant", &out->tenant, NameCheck());
  r.Required("user_tier", &out->user_tier);
  r.Optional("daily_budget_usd", &out->daily_budget);
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  out->sha256 = digest.bytes;
  return absl::OkStatus();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, AnonymousCaller* out) {
  config::ObjectReader r(node);
  r.Optional("tenant", &out->tenant, NameCheck());
  r.Optional("user_tier", &out->user_tier);
  r.Optional("daily_budget_usd", &out->daily_budget);
  r.Validate(
      out->user_tier != UserTier::kByok,
      "user_tier byok needs the caller's own provider key; anonymous callers cannot be byok");
  return r.Finish();
}

[[nodiscard]] absl::Status Decode(const config::Node& node, CallerPolicy* out) {
  config::ObjectReader r(node);
  r.Optional("allow_anonymous", &out->allow_anonymous);
  r.Optional("anonymous", &out->anonymous);
  r.Optional("keys", &out->keys);
  r.Validate(out->allow_anonymous || !out->keys.empty(),
             "no keys and allow_anonymous is false: nobody could call the router");
  return r.Finish();
}

bool RuleConditions::MatchesEverything() const {
  return !min_complexity && !max_complexity && tasks.empty() && !min_context_tokens &&
         !max_context_tokens && user_tiers.empty() && !pii && !tools_offered && !streaming &&
         !local_only && !offline && priorities.empty();
}

const TierConfig* Policy::FindTier(absl::string_view tier) const {
  for (const TierConfig& t : tiers) {
    if (t.name == tier) return &t;
  }
  return nullptr;
}

int Policy::TierIndex(absl::string_view tier) const {
  for (size_t i = 0; i < tiers.size(); ++i) {
    if (tiers[i].name == tier) return static_cast<int>(i);
  }
  return -1;
}

const BackendConfig* Policy::FindBackend(absl::string_view backend) const {
  for (const BackendConfig& b : backends) {
    if (b.name == backend) return &b;
  }
  return nullptr;
}

const BreakerSettings& Policy::BreakerFor(const BackendConfig& backend) const {
  return backend.breaker ? *backend.breaker : resilience.breaker;
}

namespace {

// Cross-field checks: names refer to what exists, nothing is ambiguous.
absl::Status ValidatePolicy(const config::Node& root, Policy* p) {
  const config::Node tiers = At(root, "tiers");
  std::set<std::string> tier_names;
  std::vector<std::string> tier_order;  // for "tiers are: ..." in policy order
  for (size_t i = 0; i < p->tiers.size(); ++i) {
    tier_order.push_back(p->tiers[i].name);
    if (!tier_names.insert(p->tiers[i].name).second) {
      return At(At(tiers, i), "name")
          .Error(absl::StrCat("tier '", p->tiers[i].name, "' is defined twice"));
    }
  }

  const config::Node backends = At(root, "backends");
  std::set<std::string> backend_names;
  std::set<std::string> tiers_with_backends;
  for (size_t i = 0; i < p->backends.size(); ++i) {
    const BackendConfig& b = p->backends[i];
    if (!backend_names.insert(b.name).second) {
      return At(At(backends, i), "name")
          .Error(absl::StrCat("backend '", b.name, "' is defined twice"));
    }
    if (p->FindTier(b.tier) == nullptr) {
      return At(At(backends, i), "tier")
          .Error(absl::StrCat("unknown tier '", b.tier,
                              "'; tiers are: ", absl::StrJoin(tier_order, ", ")));
    }
    tiers_with_backends.insert(b.tier);
  }
  for (size_t i = 0; i < p->tiers.size(); ++i) {
    if (tiers_with_backends.count(p->tiers[i].name) == 0) {
      return At(tiers, i).Error(absl::StrCat("tier '", p->tiers[i].name, "' has no backend"));
    }
  }

  const config::Node chains = At(root, "fallback_chains");
  for (const auto& [tier, chain] : p->fallback_chains) {
    const config::Node entry = At(chains, tier);
    if (p->FindTier(tier) == nullptr) {
      return entry.Error(absl::StrCat("unknown tier '", tier, "'"));
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < chain.size(); ++i) {
      if (p->FindTier(chain[i]) == nullptr) {
        return At(entry, i).Error(absl::StrCat("unknown tier '", chain[i], "'"));
      }
      if (chain[i] == tier) {
        return At(entry, i).Error(absl::StrCat("tier '", tier, "' cannot fall back to itself"));
      }
      if (!seen.insert(chain[i]).second) {
        return At(entry, i).Error(absl::StrCat("tier '", chain[i], "' is listed twice"));
      }
    }
  }
  // Default chain: every tier above, in order (local -> cheap cloud -> premium).
  for (size_t i = 0; i < p->tiers.size(); ++i) {
    if (p->fallback_chains.count(p->tiers[i].name) != 0) continue;
    std::vector<std::string> chain;
    for (size_t j = i + 1; j < p->tiers.size(); ++j) chain.push_back(p->tiers[j].name);
    p->fallback_chains[p->tiers[i].name] = std::move(chain);
  }

  const config::Node rules = At(root, "rules");
  std::set<std::string> rule_names;
  for (size_t i = 0; i < p->rules.size(); ++i) {
    const Rule& rule = p->rules[i];
    const config::Node node = At(rules, i);
    if (!rule_names.insert(rule.name).second) {
      return At(node, "name").Error(absl::StrCat("rule '", rule.name, "' is defined twice"));
    }
    const TierConfig* tier = p->FindTier(rule.tier);
    if (tier == nullptr) {
      return At(node, "tier")
          .Error(absl::StrCat("unknown tier '", rule.tier,
                              "'; tiers are: ", absl::StrJoin(tier_order, ", ")));
    }
    if (rule.local_only && tier->location != TierLocation::kLocal) {
      return At(node, "tier")
          .Error(absl::StrCat("rule '", rule.name, "' is local_only but its tier '", rule.tier,
                              "' is a cloud tier"));
    }
    const bool last = i + 1 == p->rules.size();
    if (!last && rule.when.MatchesEverything()) {
      return node.Error(absl::StrCat("rule '", rule.name,
                                     "' matches every request, so the rules "
                                     "after it could never match; make it the last rule"));
    }
    if (last && !rule.when.MatchesEverything()) {
      return node.Error(absl::StrCat("the last rule ('", rule.name,
                                     "') must have no conditions, "
                                     "so that every request has a route"));
    }
  }

  const config::Node user_tiers = At(root, "user_tiers");
  for (const auto& [name, bounds] : p->user_tiers) {
    const config::Node entry = At(user_tiers, UserTierName(name));
    int lo = 0;
    int hi = static_cast<int>(p->tiers.size()) - 1;
    if (!bounds.min_tier.empty()) {
      lo = p->TierIndex(bounds.min_tier);
      if (lo < 0) {
        return At(entry, "min_tier").Error(absl::StrCat("unknown tier '", bounds.min_tier, "'"));
      }
    }
    if (!bounds.max_tier.empty()) {
      hi = p->TierIndex(bounds.max_tier);
      if (hi < 0) {
        return At(entry, "max_tier").Error(absl::StrCat("unknown tier '", bounds.max_tier, "'"));
      }
    }
    if (lo > hi) return entry.Error("min_tier is above max_tier");
  }
  for (UserTier t : {UserTier::kFree, UserTier::kPaid, UserTier::kByok}) {
    p->user_tiers.emplace(t, UserTierPolicy{});
  }

  const config::Node keys = At(At(root, "callers"), "keys");
  std::set<std::string> key_names;
  std::set<std::array<uint8_t, 32>> hashes;
  std::map<std::string, std::pair<absl::optional<NanoUsd>, size_t>> tenant_caps;
  auto add_tenant = [&](const std::string& tenant, const absl::optional<Money>& cap,
                        const config::Node& where) -> absl::Status {
    absl::optional<NanoUsd> nano;
    if (cap) nano = cap->nano_usd;
    auto [it, inserted] = tenant_caps.emplace(tenant, std::make_pair(nano, size_t{0}));
    if (!inserted && nano && it->second.first && *it->second.first != *nano) {
      return where.Error(absl::StrCat("tenant '", tenant, "' already has daily_budget_usd ",
                                      FormatUsd(*it->second.first),
                                      "; every key of a tenant must agree"));
    }
    if (!it->second.first) it->second.first = nano;
    return absl::OkStatus();
  };
  for (size_t i = 0; i < p->callers.keys.size(); ++i) {
    const CallerKey& key = p->callers.keys[i];
    const config::Node node = At(keys, i);
    if (!key_names.insert(key.name).second) {
      return At(node, "name").Error(absl::StrCat("key name '", key.name, "' is used twice"));
    }
    if (!hashes.insert(key.sha256).second) {
      return At(node, "sha256").Error("the same key hash is configured twice");
    }
    TIERMESH_RETURN_IF_ERROR(
        add_tenant(key.tenant, key.daily_budget, At(node, "daily_budget_usd")));
  }
  if (p->callers.allow_anonymous) {
    TIERMESH_RETURN_IF_ERROR(
        add_tenant(p->callers.anonymous.tenant, p->callers.anonymous.daily_budget,
                   At(At(At(root, "callers"), "anonymous"), "daily_budget_usd")));
  }
  for (const auto& [tenant, cap] : tenant_caps) {
    if (cap.first) p->tenant_daily_budgets[tenant] = *cap.first;
  }
  return absl::OkStatus();
}

absl::StatusOr<Policy> ParsePolicyImpl(const YAML::Node& yaml) {
  const config::Node root(yaml);
  Policy p;
  std::map<std::string, UserTierPolicy> user_tiers;
  config::ObjectReader r(root);
  r.Optional("name", &p.name, NameCheck());
  r.Optional("offline", &p.offline);
  r.Required("classifier", &p.classifier);
  r.Optional("defaults", &p.defaults);
  r.Required("tiers", &p.tiers, config::NonEmpty());
  r.Required("backends", &p.backends, config::NonEmpty());
  r.Optional("fallback_chains", &p.fallback_chains);
  r.Required("rules", &p.rules, config::NonEmpty());
  r.Optional("user_tiers", &user_tiers);
  r.Optional("resilience", &p.resilience);
  r.Optional("escalation", &p.escalation);
  r.Optional("load_polling", &p.load_polling);
  r.Required("budgets", &p.budgets);
  r.Required("callers", &p.callers);
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  for (const auto& [name, bounds] : user_tiers) {
    UserTier tier;
    if (!ParseUserTier(name, &tier)) {
      return At(At(root, "user_tiers"), name)
          .Error(absl::StrCat("unknown user tier '", name, "'; expected free, paid or byok"));
    }
    p.user_tiers[tier] = bounds;
  }
  TIERMESH_RETURN_IF_ERROR(ValidatePolicy(root, &p));

  // The version follows the parsed content (after ${ENV} expansion), not the
  // file's bytes: comments and whitespace do not change it, a new value does.
  const std::string digest = crypto::Sha256Hex(YAML::Dump(yaml)).substr(0, 12);
  p.version = p.name.empty() ? digest : absl::StrCat(p.name, "-", digest);
  return p;
}

}  // namespace

absl::StatusOr<Policy> ParsePolicy(const YAML::Node& root) {
  try {
    return ParsePolicyImpl(root);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("policy: ", e.what()));
  }
}

absl::StatusOr<Policy> ParsePolicyText(absl::string_view text, absl::string_view source_name,
                                       const config::EnvLookup& env) {
  return config::LoadConfigText(text, source_name, env, ParsePolicy);
}

}  // namespace tiermesh::router
