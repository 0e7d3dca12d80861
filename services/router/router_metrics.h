// The router's Prometheus metrics (DESIGN.md "Metrics contract"), registered
// once on the process registry; label values come only from the policy
// (tiers, backends) and small fixed sets (outcomes, reasons, user tiers).
//
//   absl::StatusOr<std::unique_ptr<RouterMetrics>> m = RouterMetrics::Create(registry);
//   (*m)->RecordRequest("local_fast", "tiny", UserTier::kFree, "ok", absl::Milliseconds(80));
//   (*m)->RecordFallback("local_fast", "cloud_cheap", "unavailable");
//   (*m)->SetCircuitOpen("tiny", true);
#ifndef TIERMESH_SERVICES_ROUTER_ROUTER_METRICS_H_
#define TIERMESH_SERVICES_ROUTER_ROUTER_METRICS_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

#include "services/common/metrics/families.h"
#include "services/router/types.h"

namespace tiermesh::router {

class RouterMetrics {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RouterMetrics>> Create(
      prometheus::Registry& registry);

  // One finished request. `tier`/`backend` of the attempt that served it
  // ("none" when nothing did); outcome: "ok" or the lower-case code name.
  void RecordRequest(absl::string_view tier, absl::string_view backend, UserTier user_tier,
                     absl::string_view outcome, absl::Duration duration);
  void RecordTimeToFirstToken(absl::string_view tier, absl::Duration ttft);
  void RecordFallback(absl::string_view from_tier, absl::string_view to_tier,
                      absl::string_view reason);
  void AddCost(absl::string_view tier, absl::string_view backend, double usd);
  // scope: "global" or "tenant_default"-like bounded names (never a tenant id
  // from a request).
  void SetBudgetRemaining(absl::string_view scope, double usd);
  void SetCircuitOpen(absl::string_view backend, bool open);
  void SetDegraded(absl::string_view reason, bool degraded);
  // A request refused before any backend was chosen (bad credentials, bad
  // input, an unknown escalation): tiermesh_router_requests_total with
  // tier="none", backend="none". `user_tier`: the caller's when known, else
  // "unknown"; outcome as in RecordRequest.
  void RecordRejected(absl::string_view user_tier, absl::string_view outcome);
  // An escalation (escalate_from) and the tier that served it ("none": it failed).
  void RecordEscalation(absl::string_view from_tier, absl::string_view to_tier);
  // tiermesh_router_policy_info{version} = 1 for the policy serving now (the
  // previous version's series is removed).
  void SetPolicyVersion(absl::string_view version);
  // A policy reload: result "ok" or "rejected".
  void RecordPolicyReload(absl::string_view result);

 private:
  RouterMetrics() = default;
  std::unique_ptr<metrics::CounterVec<4>> requests_;
  std::unique_ptr<metrics::CounterVec<3>> fallbacks_;
  std::unique_ptr<metrics::HistogramVec<1>> duration_;
  std::unique_ptr<metrics::HistogramVec<1>> ttft_;
  std::unique_ptr<metrics::CounterVec<2>> cost_;
  std::unique_ptr<metrics::GaugeVec<1>> budget_remaining_;
  std::unique_ptr<metrics::GaugeVec<1>> circuit_open_;
  std::unique_ptr<metrics::GaugeVec<1>> degraded_;
  std::unique_ptr<metrics::CounterVec<2>> escalations_;
  std::unique_ptr<metrics::CounterVec<1>> reloads_;
  prometheus::Family<prometheus::Gauge>* policy_info_ = nullptr;
  std::mutex policy_mu_;
  prometheus::Gauge* policy_gauge_ = nullptr;  // guarded by policy_mu_
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_ROUTER_METRICS_H_
