// The router's injected time source. Breakers, the retry budget and the
// budget store's day rollover read time only through a Clock, so that tests
// drive them with a fake clock instead of sleeping.
//
//   RealClock clock;                              // in main
//   CircuitBreaker breaker(settings, &clock);
//   // tests: tests/unit/router/fake_clock.h
#ifndef TIERMESH_SERVICES_ROUTER_CLOCK_H_
#define TIERMESH_SERVICES_ROUTER_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tiermesh::router {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (UTC); must be safe to call from any thread.
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_CLOCK_H_
