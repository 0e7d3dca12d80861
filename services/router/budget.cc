#include "services/router/budget.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "services/common/status/status.h"

namespace tiermesh::router {
namespace {

NanoUsd Remaining(NanoUsd cap, NanoUsd used) { return used >= cap ? 0 : cap - used; }

// used >= share x cap. The threshold is rounded to the nearest nano-USD so
// that 0.8 x $100 is exactly $80 (0.8 is slightly above 4/5 as a double).
bool AtShare(NanoUsd used, NanoUsd cap, double share) {
  if (cap <= 0) return true;  // a zero cap: any paid call is over it
  const long double threshold = std::roundl(static_cast<long double>(share) * cap);
  return static_cast<long double>(used) >= threshold;
}

}  // namespace

BudgetLimits BudgetLimitsFromPolicy(const Policy& policy) {
  BudgetLimits limits;
  limits.global_daily = policy.budgets.global_daily.nano_usd;
  if (policy.budgets.default_tenant_daily) {
    limits.default_tenant_daily = policy.budgets.default_tenant_daily->nano_usd;
  }
  limits.tenant_daily = policy.tenant_daily_budgets;
  limits.free_local_only_at = policy.budgets.free_local_only_at;
  limits.paid_local_only_at = policy.budgets.paid_local_only_at;
  limits.daily_cloud_fallback_limit = policy.budgets.daily_cloud_fallback_limit;
  return limits;
}

InMemoryBudgetStore::InMemoryBudgetStore(const BudgetLimits& limits, const Clock* clock)
    : clock_(clock), limits_(limits) {}

absl::CivilDay InMemoryBudgetStore::TodayLocked() const {
  return absl::ToCivilDay(clock_->Now(), absl::UTCTimeZone());
}

InMemoryBudgetStore::Day& InMemoryBudgetStore::CurrentDayLocked(absl::CivilDay today) {
  for (auto it = days_.begin(); it != days_.end();) {
    if (it->first < today && it->second.outstanding == 0) {
      it = days_.erase(it);
    } else {
      ++it;
    }
  }
  return days_[today];
}

absl::optional<NanoUsd> InMemoryBudgetStore::TenantCapLocked(absl::string_view tenant) const {
  auto it = limits_.tenant_daily.find(std::string(tenant));
  if (it != limits_.tenant_daily.end()) return it->second;
  return limits_.default_tenant_daily;
}

bool InMemoryBudgetStore::DegradedLocked(const Day& day, UserTier tier) const {
  if (!limits_.global_daily || tier == UserTier::kByok) return false;
  const double share =
      tier == UserTier::kFree ? limits_.free_local_only_at : limits_.paid_local_only_at;
  return AtShare(day.global.Used(), *limits_.global_daily, share);
}

absl::StatusOr<Reservation> InMemoryBudgetStore::Reserve(const ReserveRequest& request) {
  if (request.amount_nano_usd < 0) {
    return absl::InvalidArgumentError("a reservation cannot be negative");
  }
  if (request.tenant.empty()) return absl::InvalidArgumentError("a reservation needs a tenant");
  std::lock_guard<std::mutex> lock(mu_);
  const absl::CivilDay today = TodayLocked();
  Day& day = CurrentDayLocked(today);
  Usage& tenant = day.tenants[request.tenant];
  const NanoUsd amount = request.amount_nano_usd;
  // Zero-cost (local) calls are always allowed: an exhausted budget must
  // never take the free tiers down with it.
  if (amount > 0) {
    if (DegradedLocked(day, request.user_tier)) {
      return WithReason(
          absl::ResourceExhaustedError(absl::StrCat(
              "the global daily budget is nearly spent (", FormatUsd(day.global.Used()), " of ",
              FormatUsd(*limits_.global_daily), "): ", UserTierName(request.user_tier),
              " users are local-only until midnight UTC")),
          kBudgetReasonDegraded);
    }
    if (const absl::optional<NanoUsd> cap = TenantCapLocked(request.tenant)) {
      if (AddNanoUsd(tenant.Used(), amount) > *cap) {
        return WithReason(absl::ResourceExhaustedError(absl::StrCat(
                              "tenant '", request.tenant, "' daily budget: ",
                              FormatUsd(Remaining(*cap, tenant.Used())), " of ", FormatUsd(*cap),
                              " left, this call may cost up to ", FormatUsd(amount))),
                          kBudgetReasonTenant);
      }
    }
    if (limits_.global_daily && AddNanoUsd(day.global.Used(), amount) > *limits_.global_daily) {
      return WithReason(absl::ResourceExhaustedError(absl::StrCat(
                            "global daily budget: ",
                            FormatUsd(Remaining(*limits_.global_daily, day.global.Used())), " of ",
                            FormatUsd(*limits_.global_daily), " left, this call may cost up to ",
                            FormatUsd(amount))),
                        kBudgetReasonGlobal);
    }
  }
  tenant.reserved = AddNanoUsd(tenant.reserved, amount);
  day.global.reserved = AddNanoUsd(day.global.reserved, amount);
  ++day.outstanding;
  Reservation r;
  r.id = next_id_++;
  r.tenant = request.tenant;
  r.amount_nano_usd = amount;
  r.day = today;
  outstanding_.emplace(r.id, r);
  return r;
}

absl::Status InMemoryBudgetStore::FinishLocked(const Reservation& reservation, NanoUsd charge) {
  auto it = outstanding_.find(reservation.id);
  if (it == outstanding_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reservation ", reservation.id, " is not outstanding (already settled or released)"));
  }
  // Trust our own record, not the caller's copy.
  const Reservation r = it->second;
  outstanding_.erase(it);
  Day& day = days_[r.day];
  Usage& tenant = day.tenants[r.tenant];
  tenant.reserved = std::max<NanoUsd>(0, tenant.reserved - r.amount_nano_usd);
  day.global.reserved = std::max<NanoUsd>(0, day.global.reserved - r.amount_nano_usd);
  tenant.spent = AddNanoUsd(tenant.spent, charge);
  day.global.spent = AddNanoUsd(day.global.spent, charge);
  --day.outstanding;
  CurrentDayLocked(TodayLocked());  // drop a finished old day
  return absl::OkStatus();
}

absl::Status InMemoryBudgetStore::Settle(const Reservation& reservation, NanoUsd actual_nano_usd) {
  if (actual_nano_usd < 0) return absl::InvalidArgumentError("a cost cannot be negative");
  std::lock_guard<std::mutex> lock(mu_);
  return FinishLocked(reservation, actual_nano_usd);
}

absl::Status InMemoryBudgetStore::Release(const Reservation& reservation) {
  std::lock_guard<std::mutex> lock(mu_);
  return FinishLocked(reservation, 0);
}

bool InMemoryBudgetStore::TryCountCloudFallback() {
  std::lock_guard<std::mutex> lock(mu_);
  Day& day = CurrentDayLocked(TodayLocked());
  if (limits_.daily_cloud_fallback_limit &&
      day.cloud_fallbacks >= *limits_.daily_cloud_fallback_limit) {
    return false;
  }
  ++day.cloud_fallbacks;
  return true;
}

BudgetSnapshot InMemoryBudgetStore::Snapshot(absl::string_view tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::CivilDay today = TodayLocked();
  const Day& day = CurrentDayLocked(today);
  BudgetSnapshot s;
  s.day = today;
  s.global_spent = day.global.spent;
  s.global_reserved = day.global.reserved;
  auto it = day.tenants.find(std::string(tenant));
  if (it != day.tenants.end()) {
    s.tenant_spent = it->second.spent;
    s.tenant_reserved = it->second.reserved;
  }
  s.cloud_fallbacks = day.cloud_fallbacks;
  if (const absl::optional<NanoUsd> cap = TenantCapLocked(tenant)) {
    s.view.tenant_remaining = Remaining(*cap, AddNanoUsd(s.tenant_spent, s.tenant_reserved));
  }
  if (limits_.global_daily) {
    s.view.global_remaining = Remaining(*limits_.global_daily, day.global.Used());
  }
  s.view.free_local_only = DegradedLocked(day, UserTier::kFree);
  s.view.paid_local_only = DegradedLocked(day, UserTier::kPaid);
  s.view.cloud_fallbacks_exhausted = limits_.daily_cloud_fallback_limit.has_value() &&
                                     day.cloud_fallbacks >= *limits_.daily_cloud_fallback_limit;
  return s;
}

void InMemoryBudgetStore::SetLimits(const BudgetLimits& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_ = limits;
}

}  // namespace tiermesh::router
