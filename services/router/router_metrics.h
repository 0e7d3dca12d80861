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
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
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
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_ROUTER_METRICS_H_
