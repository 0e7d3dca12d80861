#include "services/router/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace tiermesh::router {
namespace {
constexpr int kWindowBuckets = 10;
}  // namespace

RetryBudget::RetryBudget(const RetryBudgetSettings& settings, const Clock* clock)
    : clock_(clock), settings_(settings), window_(settings.window, kWindowBuckets) {}

int64_t RetryBudget::AllowedLocked(int64_t requests) const {
  const double floor = settings_.min_per_second * absl::ToDoubleSeconds(settings_.window);
  const double by_ratio = settings_.ratio * static_cast<double>(requests);
  return static_cast<int64_t>(std::floor(std::max(floor, by_ratio)));
}

void RetryBudget::RecordRequest() {
  std::lock_guard<std::mutex> lock(mu_);
  window_.Add(clock_->Now(), 0, 1);
}

bool RetryBudget::TryAcquireRetry() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  const std::array<int64_t, 2> sums = window_.Sums(now);
  if (sums[1] >= AllowedLocked(sums[0])) return false;
  window_.Add(now, 1, 1);
  return true;
}

int64_t RetryBudget::RetriesAllowed() {
  std::lock_guard<std::mutex> lock(mu_);
  return AllowedLocked(window_.Sums(clock_->Now())[0]);
}

void RetryBudget::UpdateSettings(const RetryBudgetSettings& settings) {
  std::lock_guard<std::mutex> lock(mu_);
  if (settings.window != settings_.window)
    window_ = SlidingWindowCounter(settings.window, kWindowBuckets);
  settings_ = settings;
}

}  // namespace tiermesh::router
