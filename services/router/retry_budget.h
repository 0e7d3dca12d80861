// A retry budget: retries (every backend attempt after a request's first,
// fallbacks included) may be at most `ratio` of the requests seen over a
// sliding window, plus a floor of `min_per_second` so that a quiet router can
// still fall back. During an outage this caps the extra load the router sends
// upstream at (1 + ratio) times the request rate, instead of max_attempts
// times.
//
//   RetryBudget budget(policy.resilience.retry_budget, &clock);
//   budget.RecordRequest();                      // once per incoming request
//   ...
//   if (!budget.TryAcquireRetry()) return last_error;   // no fallback this time
//
// Thread-safe (std::mutex).
#ifndef TIERMESH_SERVICES_ROUTER_RETRY_BUDGET_H_
#define TIERMESH_SERVICES_ROUTER_RETRY_BUDGET_H_

#include <cstdint>
#include <mutex>

#include "services/router/clock.h"
#include "services/router/policy.h"
#include "services/router/sliding_window.h"

namespace tiermesh::router {

class RetryBudget {
 public:
  // `clock` must outlive the budget.
  RetryBudget(const RetryBudgetSettings& settings, const Clock* clock);
  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;

  void RecordRequest();
  // True (and the retry is counted) when a retry fits the budget now.
  [[nodiscard]] bool TryAcquireRetry();
  // Retries the budget would allow in the current window (for metrics/tests).
  int64_t RetriesAllowed();
  // New settings (policy reload); a new window resets the counts.
  void UpdateSettings(const RetryBudgetSettings& settings);

 private:
  int64_t AllowedLocked(int64_t requests) const;

  const Clock* const clock_;
  std::mutex mu_;
  RetryBudgetSettings settings_;
  SlidingWindowCounter window_;  // [0] requests, [1] retries
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_RETRY_BUDGET_H_
