// A settable, thread-safe Clock for router tests (breakers, retry budget,
// budget day rollover): time moves only when the test says so.
//
//   FakeClock clock(absl::FromCivil(absl::CivilSecond(2026, 11, 3, 12, 0, 0),
//   absl::UTCTimeZone())); clock.Advance(absl::Seconds(10));
#ifndef TIERMESH_TESTS_UNIT_ROUTER_FAKE_CLOCK_H_
#define TIERMESH_TESTS_UNIT_ROUTER_FAKE_CLOCK_H_

#include <mutex>

#include "absl/time/time.h"

#include "services/router/clock.h"

namespace tiermesh::router::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'790'000'000)) : now_(start) {}

  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace tiermesh::router::testing

#endif  // TIERMESH_TESTS_UNIT_ROUTER_FAKE_CLOCK_H_
