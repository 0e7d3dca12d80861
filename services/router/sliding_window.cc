#include "services/router/sliding_window.h"

#include <algorithm>

namespace tiermesh::router {

SlidingWindowCounter::SlidingWindowCounter(absl::Duration window, int buckets)
    : window_(std::max(window, absl::Milliseconds(1))),
      buckets_(static_cast<size_t>(std::max(buckets, 1))) {
  width_ = window_ / static_cast<int64_t>(buckets_.size());
  if (width_ <= absl::ZeroDuration()) width_ = absl::Nanoseconds(1);
}

int64_t SlidingWindowCounter::EpochOf(absl::Time now) {
  absl::Duration remainder;  // IDivDuration needs somewhere to write it
  const int64_t epoch = absl::IDivDuration(now - absl::UnixEpoch(), width_, &remainder);
  // A clock stepping back must not resurrect stale buckets.
  last_epoch_ = std::max(last_epoch_, epoch);
  return last_epoch_;
}

void SlidingWindowCounter::Add(absl::Time now, int counter, int64_t n) {
  if (counter < 0 || counter > 1) return;
  const int64_t epoch = EpochOf(now);
  const int64_t size = static_cast<int64_t>(buckets_.size());
  Bucket& b = buckets_[static_cast<size_t>(((epoch % size) + size) % size)];
  if (b.epoch != epoch) {
    b.epoch = epoch;
    b.counts = {0, 0};
  }
  b.counts[static_cast<size_t>(counter)] += n;
}

std::array<int64_t, 2> SlidingWindowCounter::Sums(absl::Time now) {
  const int64_t epoch = EpochOf(now);
  const int64_t oldest = epoch - static_cast<int64_t>(buckets_.size()) + 1;
  std::array<int64_t, 2> sums{};
  for (const Bucket& b : buckets_) {
    if (b.epoch >= oldest && b.epoch <= epoch) {
      sums[0] += b.counts[0];
      sums[1] += b.counts[1];
    }
  }
  return sums;
}

void SlidingWindowCounter::Clear() {
  for (Bucket& b : buckets_) b = Bucket{};
}

}  // namespace tiermesh::router
