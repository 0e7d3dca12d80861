// Two counters summed over a sliding time window, kept in a ring of buckets
// (window / buckets wide each). Used by the circuit breaker (successes,
// failures) and the retry budget (requests, retries). Not thread-safe: the
// owner locks. Time that moves backwards counts into the newest bucket.
//
//   SlidingWindowCounter w(absl::Seconds(10), /*buckets=*/10);
//   w.Add(now, 0, 1);                   // one request
//   w.Add(now, 1, 1);                   // one retry
//   std::array<int64_t, 2> sums = w.Sums(now + absl::Seconds(3));
#ifndef TIERMESH_SERVICES_ROUTER_SLIDING_WINDOW_H_
#define TIERMESH_SERVICES_ROUTER_SLIDING_WINDOW_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace tiermesh::router {

class SlidingWindowCounter {
 public:
  // window > 0 and buckets >= 1 (smaller values are raised to those).
  SlidingWindowCounter(absl::Duration window, int buckets);

  void Add(absl::Time now, int counter, int64_t n);
  // Sums of both counters over the buckets within the window ending at `now`.
  std::array<int64_t, 2> Sums(absl::Time now);
  void Clear();

  absl::Duration window() const { return window_; }

 private:
  struct Bucket {
    int64_t epoch = -1;
    std::array<int64_t, 2> counts{};
  };
  int64_t EpochOf(absl::Time now);

  absl::Duration window_;
  absl::Duration width_;
  std::vector<Bucket> buckets_;
  int64_t last_epoch_ = 0;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_SLIDING_WINDOW_H_
