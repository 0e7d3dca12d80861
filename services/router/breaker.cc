#include "services/router/breaker.h"

#include <utility>

namespace tiermesh::router {
namespace {
constexpr int kWindowBuckets = 10;
}  // namespace

CircuitBreaker::CircuitBreaker(const BreakerSettings& settings, const Clock* clock,
                               Listener listener)
    : clock_(clock),
      listener_(std::move(listener)),
      settings_(settings),
      window_(settings.window, kWindowBuckets) {}

void CircuitBreaker::TransitionLocked(BreakerState to, absl::Time now) {
  const BreakerState from = state_;
  state_ = to;
  ++generation_;
  probes_in_flight_ = 0;
  consecutive_failures_ = 0;
  if (to == BreakerState::kOpen) opened_at_ = now;
  if (to == BreakerState::kClosed) window_.Clear();
  if (listener_ && from != to) listener_(from, to);
}

absl::optional<BreakerPermit> CircuitBreaker::TryAcquire() {
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  if (state_ == BreakerState::kClosed) return BreakerPermit{generation_, false};
  if (state_ == BreakerState::kOpen) {
    if (now - opened_at_ < settings_.open_for) return absl::nullopt;
    TransitionLocked(BreakerState::kHalfOpen, now);
  }
  // Half-open: a bounded number of probes at a time.
  if (probes_in_flight_ >= settings_.half_open_probes) return absl::nullopt;
  ++probes_in_flight_;
  return BreakerPermit{generation_, true};
}

void CircuitBreaker::Record(const BreakerPermit& permit, BreakerOutcome outcome) {
  std::lock_guard<std::mutex> lock(mu_);
  // A call that started before the last state change says nothing about now.
  if (permit.generation != generation_) return;
  const absl::Time now = clock_->Now();
  if (state_ == BreakerState::kHalfOpen && permit.probe) {
    --probes_in_flight_;
    if (outcome == BreakerOutcome::kSuccess) TransitionLocked(BreakerState::kClosed, now);
    if (outcome == BreakerOutcome::kFailure) TransitionLocked(BreakerState::kOpen, now);
    return;
  }
  if (state_ != BreakerState::kClosed || permit.probe) return;
  if (outcome == BreakerOutcome::kSuccess) {
    consecutive_failures_ = 0;
    window_.Add(now, 0, 1);
  } else if (outcome == BreakerOutcome::kFailure) {
    ++consecutive_failures_;
    window_.Add(now, 1, 1);
    const std::array<int64_t, 2> sums = window_.Sums(now);
    const int64_t total = sums[0] + sums[1];
    const bool ratio_tripped =
        total >= settings_.min_requests &&
        static_cast<double>(sums[1]) >= settings_.failure_ratio * static_cast<double>(total);
    if (consecutive_failures_ >= settings_.consecutive_failures || ratio_tripped) {
      TransitionLocked(BreakerState::kOpen, now);
    }
  }
}

BreakerState CircuitBreaker::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == BreakerState::kOpen && clock_->Now() - opened_at_ >= settings_.open_for) {
    return BreakerState::kHalfOpen;
  }
  return state_;
}

void CircuitBreaker::UpdateSettings(const BreakerSettings& settings) {
  std::lock_guard<std::mutex> lock(mu_);
  if (settings.window != settings_.window)
    window_ = SlidingWindowCounter(settings.window, kWindowBuckets);
  settings_ = settings;
}

BreakerSet::BreakerSet(const Clock* clock, Listener listener)
    : clock_(clock), listener_(std::move(listener)) {}

void BreakerSet::Sync(const Policy& policy) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::shared_ptr<CircuitBreaker>> next;
  for (const BackendConfig& backend : policy.backends) {
    const BreakerSettings& settings = policy.BreakerFor(backend);
    auto it = breakers_.find(backend.name);
    if (it != breakers_.end()) {
      it->second->UpdateSettings(settings);
      next.emplace(backend.name, it->second);
      continue;
    }
    CircuitBreaker::Listener per_backend;
    if (listener_) {
      per_backend = [listener = listener_, name = backend.name](
                        BreakerState from, BreakerState to) { listener(name, from, to); };
    }
    next.emplace(backend.name,
                 std::make_shared<CircuitBreaker>(settings, clock_, std::move(per_backend)));
  }
  breakers_ = std::move(next);
}

std::shared_ptr<CircuitBreaker> BreakerSet::Get(const std::string& backend) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = breakers_.find(backend);
  return it == breakers_.end() ? nullptr : it->second;
}

std::map<std::string, BreakerState> BreakerSet::States() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, BreakerState> states;
  for (const auto& [name, breaker] : breakers_) states.emplace(name, breaker->state());
  return states;
}

}  // namespace tiermesh::router
