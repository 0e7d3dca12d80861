#include "services/router/router_metrics.h"

#include <utility>

#include "services/common/status/status.h"

namespace tiermesh::router {

absl::StatusOr<std::unique_ptr<RouterMetrics>> RouterMetrics::Create(
    prometheus::Registry& registry) {
  std::unique_ptr<RouterMetrics> m(new RouterMetrics());
  TIERMESH_ASSIGN_OR_RETURN(
      m->requests_,
      metrics::NewCounterVec(registry, "tiermesh_router_requests_total",
                             "Requests by serving tier and backend, user tier and outcome.",
                             {"tier", "backend", "user_tier", "outcome"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->fallbacks_,
      metrics::NewCounterVec(registry, "tiermesh_router_fallbacks_total",
                             "Moves from one attempt's tier to the next attempt's, by reason.",
                             {"from_tier", "to_tier", "reason"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->duration_, metrics::NewHistogramVec(registry, "tiermesh_router_request_duration_seconds",
                                             "End-to-end request latency by serving tier.",
                                             {"tier"}, metrics::LatencyBucketsSeconds()));
  TIERMESH_ASSIGN_OR_RETURN(
      m->ttft_, metrics::NewHistogramVec(registry, "tiermesh_router_time_to_first_token_seconds",
                                         "Time to the first streamed token by serving tier.",
                                         {"tier"}, metrics::LatencyBucketsSeconds()));
  TIERMESH_ASSIGN_OR_RETURN(
      m->cost_, metrics::NewCounterVec(registry, "tiermesh_router_cost_usd_total",
                                       "Spend in USD by tier and backend.", {"tier", "backend"}));
  TIERMESH_ASSIGN_OR_RETURN(m->budget_remaining_,
                            metrics::NewGaugeVec(registry, "tiermesh_router_budget_remaining_usd",
                                                 "Daily budget left in USD by scope.", {"scope"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->circuit_open_,
      metrics::NewGaugeVec(registry, "tiermesh_router_backend_circuit_open",
                           "1 while the backend's circuit breaker is open.", {"backend"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->degraded_, metrics::NewGaugeVec(registry, "tiermesh_router_degraded",
                                         "1 while a degraded mode is in force.", {"reason"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->escalations_,
      metrics::NewCounterVec(registry, "tiermesh_router_escalations_total",
                             "Escalations (escalate_from) by the earlier answer's tier and the "
                             "tier that served the escalation (none: it failed).",
                             {"from_tier", "to_tier"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->reloads_,
      metrics::NewCounterVec(registry, "tiermesh_router_policy_reloads_total",
                             "Policy file changes, by result (ok or rejected).", {"result"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->policy_info_,
      metrics::AddGaugeFamily(registry, "tiermesh_router_policy_info",
                              "1 for the version of the routing policy serving now."));
  return m;
}

void RouterMetrics::RecordRequest(absl::string_view tier, absl::string_view backend,
                                  UserTier user_tier, absl::string_view outcome,
                                  absl::Duration duration) {
  requests_->Get({tier, backend, UserTierName(user_tier), outcome}).Increment();
  duration_->Get({tier}).Observe(absl::ToDoubleSeconds(duration));
}

void RouterMetrics::RecordTimeToFirstToken(absl::string_view tier, absl::Duration ttft) {
  ttft_->Get({tier}).Observe(absl::ToDoubleSeconds(ttft));
}

void RouterMetrics::RecordFallback(absl::string_view from_tier, absl::string_view to_tier,
                                   absl::string_view reason) {
  fallbacks_->Get({from_tier, to_tier, reason}).Increment();
}

void RouterMetrics::AddCost(absl::string_view tier, absl::string_view backend, double usd) {
  if (usd > 0) cost_->Get({tier, backend}).Increment(usd);
}

void RouterMetrics::SetBudgetRemaining(absl::string_view scope, double usd) {
  budget_remaining_->Get({scope}).Set(usd);
}

void RouterMetrics::SetCircuitOpen(absl::string_view backend, bool open) {
  circuit_open_->Get({backend}).Set(open ? 1.0 : 0.0);
}

void RouterMetrics::SetDegraded(absl::string_view reason, bool degraded) {
  degraded_->Get({reason}).Set(degraded ? 1.0 : 0.0);
}

void RouterMetrics::RecordRejected(absl::string_view user_tier, absl::string_view outcome) {
  requests_->Get({"none", "none", user_tier, outcome}).Increment();
}

void RouterMetrics::RecordEscalation(absl::string_view from_tier, absl::string_view to_tier) {
  escalations_->Get({from_tier, to_tier}).Increment();
}

void RouterMetrics::SetPolicyVersion(absl::string_view version) {
  std::lock_guard<std::mutex> lock(policy_mu_);
  if (policy_gauge_ != nullptr) policy_info_->Remove(policy_gauge_);
  policy_gauge_ = &policy_info_->Add({{"version", std::string(version)}});
  policy_gauge_->Set(1.0);
}

void RouterMetrics::RecordPolicyReload(absl::string_view result) {
  reloads_->Get({result}).Increment();
}

}  // namespace tiermesh::router
