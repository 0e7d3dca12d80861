// Per-backend circuit breakers. A breaker opens after N consecutive failures
// or when the failure ratio over a sliding window crosses a threshold (once
// enough attempts were seen); after a cool-down it lets a few probe calls
// through (half-open); a probe's success closes it, a probe's failure reopens
// it for another cool-down. Time comes from an injected Clock.
//
//   CircuitBreaker breaker(settings, &clock);
//   absl::optional<BreakerPermit> permit = breaker.TryAcquire();
//   if (!permit) ...;                          // open: skip this backend ("circuit_open")
//   absl::Status s = CallBackend(...);
//   breaker.Record(*permit, failure.counts_for_breaker ? BreakerOutcome::kFailure
//                         : s.ok() ? BreakerOutcome::kSuccess : BreakerOutcome::kIgnored);
//
// Every permit must be recorded exactly once (kIgnored when the outcome says
// nothing about the backend: cancelled by the caller, a bad request), or a
// half-open breaker keeps a probe slot taken. Outcomes of calls that started
// before the last state change are ignored, so a slow failure from before the
// cool-down cannot reopen a breaker that has since recovered.
//
// Thread-safe (one std::mutex per breaker).
#ifndef TIERMESH_SERVICES_ROUTER_BREAKER_H_
#define TIERMESH_SERVICES_ROUTER_BREAKER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "absl/types/optional.h"

#include "services/router/clock.h"
#include "services/router/policy.h"
#include "services/router/sliding_window.h"
#include "services/router/types.h"

namespace tiermesh::router {

enum class BreakerOutcome { kSuccess, kFailure, kIgnored };

struct BreakerPermit {
  // The breaker's state generation when the permit was granted.
  uint64_t generation = 0;
  // Granted as a half-open probe.
  bool probe = false;
};

class CircuitBreaker {
 public:
  // Called on every state change, under the breaker's lock (so changes are
  // reported in order): it must be quick and must not call the breaker.
  using Listener = std::function<void(BreakerState from, BreakerState to)>;

  // `clock` must outlive the breaker.
  CircuitBreaker(const BreakerSettings& settings, const Clock* clock, Listener listener = nullptr);
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // A permit to call the backend now, or nullopt while open (or while
  // half-open with every probe slot taken). An open breaker whose cool-down
  // has passed turns half-open here.
  [[nodiscard]] absl::optional<BreakerPermit> TryAcquire();
  void Record(const BreakerPermit& permit, BreakerOutcome outcome);

  // The state as a caller would see it now: an open breaker past its
  // cool-down reads half_open (without changing anything).
  BreakerState state() const;
  // New settings (policy reload); the state is kept.
  void UpdateSettings(const BreakerSettings& settings);

 private:
  void TransitionLocked(BreakerState to, absl::Time now);

  const Clock* const clock_;
  const Listener listener_;
  mutable std::mutex mu_;
  BreakerSettings settings_;
  SlidingWindowCounter window_;  // [0] successes, [1] failures, while closed
  BreakerState state_ = BreakerState::kClosed;
  uint64_t generation_ = 0;
  int consecutive_failures_ = 0;
  absl::Time opened_at_ = absl::InfinitePast();
  int probes_in_flight_ = 0;
};

// One breaker per backend of the current policy.
//
//   BreakerSet breakers(&clock, [&](const std::string& backend, BreakerState, BreakerState to) {
//     metrics.SetCircuitOpen(backend, to == BreakerState::kOpen);
//   });
//   breakers.Sync(policy);                  // at start and after every reload
//   std::shared_ptr<CircuitBreaker> b = breakers.Get("worker-tiny");
//   RuntimeView view; view.breakers = breakers.States();
class BreakerSet {
 public:
  using Listener =
      std::function<void(const std::string& backend, BreakerState from, BreakerState to)>;

  explicit BreakerSet(const Clock* clock, Listener listener = nullptr);

  // Creates breakers for new backends, updates the settings of kept ones
  // (their state is kept) and drops those no longer in the policy.
  void Sync(const Policy& policy);
  // nullptr for a backend not in the policy.
  std::shared_ptr<CircuitBreaker> Get(const std::string& backend) const;
  std::map<std::string, BreakerState> States() const;

 private:
  const Clock* const clock_;
  const Listener listener_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<CircuitBreaker>> breakers_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_BREAKER_H_
