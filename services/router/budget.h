// Daily cost budgets: a global cap and per-tenant caps in exact nano-USD,
// reset at midnight UTC. Before a paid call the router reserves the call's
// worst case (max_tokens x output price + prompt tokens x input price); after
// it, it settles the real cost (or releases the reservation when the call
// failed). Because a reservation is checked and taken under one lock,
// concurrent requests can never together exceed a cap, as long as no call
// costs more than its worst case.
//
//   InMemoryBudgetStore store(BudgetLimitsFromPolicy(policy), &clock);
//   absl::StatusOr<Reservation> r = store.Reserve({tenant, UserTier::kPaid, worst_case});
//   if (!r.ok()) ...;                                  // RESOURCE_EXHAUSTED: try a local tier
//   absl::Status s = CallBackend(...);
//   if (s.ok()) (void)store.Settle(*r, real_cost); else (void)store.Release(*r);
//   BudgetSnapshot snap = store.Snapshot(tenant);      // -> RuntimeView.budget for Decide
//
// Rules:
// - Zero-cost reservations (local tiers) always succeed, even with every cap spent.
// - As the global cap nears (spent + reserved >= free_local_only_at x cap) free
//   users' paid reservations are refused ("budget_degraded"), then paid users'
//   (paid_local_only_at). byok is never degraded; byok calls are paid by the
//   caller's key and should reserve 0.
// - The daily cloud-fallback limit counts local failures sent to cloud.
// - A reservation belongs to the UTC day it was made on: settling it after
//   midnight charges the old day, never the new one.
// - Settle charges the real cost even when it is above the reservation
//   (the money was spent); only then can a cap be exceeded.
//
// BudgetStore is the interface so that a store shared by several router
// replicas can replace the in-memory one later.
#ifndef TIERMESH_SERVICES_ROUTER_BUDGET_H_
#define TIERMESH_SERVICES_ROUTER_BUDGET_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/types/optional.h"

#include "services/router/clock.h"
#include "services/router/decide.h"
#include "services/router/money.h"
#include "services/router/policy.h"
#include "services/router/types.h"

namespace tiermesh::router {

// Error reasons (tiermesh::ErrorReason) of refused reservations.
inline constexpr absl::string_view kBudgetReasonTenant = "budget_tenant";
inline constexpr absl::string_view kBudgetReasonGlobal = "budget_global";
inline constexpr absl::string_view kBudgetReasonDegraded = "budget_degraded";

struct BudgetLimits {
  // Unset: no cap.
  absl::optional<NanoUsd> global_daily;
  // Tenants not in tenant_daily get this cap; unset: none.
  absl::optional<NanoUsd> default_tenant_daily;
  std::map<std::string, NanoUsd> tenant_daily;
  // Shares of the global cap (see above); 1.0 = only when fully spent.
  double free_local_only_at = 1.0;
  double paid_local_only_at = 1.0;
  // Unset: no limit.
  absl::optional<int64_t> daily_cloud_fallback_limit;
};

// The policy's budgets and callers' tenant caps as BudgetLimits.
BudgetLimits BudgetLimitsFromPolicy(const Policy& policy);

struct ReserveRequest {
  std::string tenant;
  UserTier user_tier = UserTier::kFree;
  NanoUsd amount_nano_usd = 0;
};

struct Reservation {
  uint64_t id = 0;
  std::string tenant;
  NanoUsd amount_nano_usd = 0;
  absl::CivilDay day;
};

struct BudgetSnapshot {
  absl::CivilDay day;
  // For Decide (remaining amounts and degraded modes).
  BudgetView view;
  NanoUsd global_spent = 0;
  NanoUsd global_reserved = 0;
  NanoUsd tenant_spent = 0;
  NanoUsd tenant_reserved = 0;
  int64_t cloud_fallbacks = 0;
};

class BudgetStore {
 public:
  virtual ~BudgetStore() = default;

  // INVALID_ARGUMENT for a negative amount or empty tenant;
  // RESOURCE_EXHAUSTED (reason budget_tenant, budget_global or
  // budget_degraded) when the amount does not fit today.
  [[nodiscard]] virtual absl::StatusOr<Reservation> Reserve(const ReserveRequest& request) = 0;
  // Replaces the reservation by the real cost. FAILED_PRECONDITION when the
  // reservation is not outstanding (already settled or released).
  [[nodiscard]] virtual absl::Status Settle(const Reservation& reservation,
                                            NanoUsd actual_nano_usd) = 0;
  // Gives the reservation back (the call failed and cost nothing).
  [[nodiscard]] virtual absl::Status Release(const Reservation& reservation) = 0;
  // Counts one cloud fallback today; false (not counted) at the daily limit.
  [[nodiscard]] virtual bool TryCountCloudFallback() = 0;
  virtual BudgetSnapshot Snapshot(absl::string_view tenant) = 0;
  // New limits (policy reload); today's spending is kept.
  virtual void SetLimits(const BudgetLimits& limits) = 0;
};

// Thread-safe (one std::mutex); state is lost on restart.
class InMemoryBudgetStore final : public BudgetStore {
 public:
  // `clock` must outlive the store.
  InMemoryBudgetStore(const BudgetLimits& limits, const Clock* clock);

  absl::StatusOr<Reservation> Reserve(const ReserveRequest& request) override;
  absl::Status Settle(const Reservation& reservation, NanoUsd actual_nano_usd) override;
  absl::Status Release(const Reservation& reservation) override;
  bool TryCountCloudFallback() override;
  BudgetSnapshot Snapshot(absl::string_view tenant) override;
  void SetLimits(const BudgetLimits& limits) override;

 private:
  struct Usage {
    NanoUsd spent = 0;
    NanoUsd reserved = 0;
    NanoUsd Used() const { return AddNanoUsd(spent, reserved); }
  };
  struct Day {
    Usage global;
    std::map<std::string, Usage> tenants;
    int64_t cloud_fallbacks = 0;
    int64_t outstanding = 0;
  };

  absl::CivilDay TodayLocked() const;
  // Today's state, dropping earlier days with nothing outstanding.
  Day& CurrentDayLocked(absl::CivilDay today);
  absl::optional<NanoUsd> TenantCapLocked(absl::string_view tenant) const;
  bool DegradedLocked(const Day& day, UserTier tier) const;
  absl::Status FinishLocked(const Reservation& reservation, NanoUsd charge);

  const Clock* const clock_;
  std::mutex mu_;
  BudgetLimits limits_;
  std::map<absl::CivilDay, Day> days_;
  std::unordered_map<uint64_t, Reservation> outstanding_;
  uint64_t next_id_ = 1;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_BUDGET_H_
