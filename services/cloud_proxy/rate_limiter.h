// Client-side limits per provider: a requests-per-minute and a
// tokens-per-minute token bucket, checked together before any upstream call,
// so that the proxy rejects (RESOURCE_EXHAUSTED, with the wait in the status'
// retry-after) instead of earning a 429 from the provider.
//
//   RateLimiter limiter({.requests_per_minute = 60, .tokens_per_minute = 90000},
//                       [] { return absl::Now(); });
//   TIERMESH_RETURN_IF_ERROR(limiter.TryAcquire(/*tokens=*/prompt + max_tokens));
//   ... call upstream ...
//   limiter.Adjust(actual_tokens - (prompt + max_tokens));   // refund the unused part
//
// Each bucket holds up to one minute's worth (the burst) and refills
// continuously at limit/60 s. A request is admitted only when BOTH buckets
// hold enough; then both are debited at once. Arithmetic is exact (integer
// token-nanoseconds), so tests with a fake clock are deterministic. A request
// needing more tokens than a whole minute's allowance can never pass and is
// rejected without a retry-after. A limit of 0 means unlimited.
// Thread-safe.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_RATE_LIMITER_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_RATE_LIMITER_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tiermesh::cloud {

struct RateLimits {
  int64_t requests_per_minute = 0;  // 0: unlimited
  int64_t tokens_per_minute = 0;    // 0: unlimited
};

// One continuously refilling bucket (not thread-safe; RateLimiter locks).
class TokenBucket {
 public:
  // Starts full at `now`.
  TokenBucket(int64_t per_minute, absl::Time now);

  bool unlimited() const { return per_minute_ == 0; }
  // Time until `amount` is available (0 when it is now); InfiniteDuration when
  // `amount` exceeds the capacity.
  absl::Duration WaitFor(int64_t amount, absl::Time now);
  // Removes `amount` (may go negative: debt is repaid by the refill).
  void Take(int64_t amount, absl::Time now);
  // Adds `amount` back, capped at the capacity.
  void Give(int64_t amount, absl::Time now);
  // Whole units available now (floored; negative while in debt).
  int64_t Available(absl::Time now);

 private:
  void Refill(absl::Time now);

  int64_t per_minute_;
  // Level in "unit-nanoseconds": one unit = 60e9, so refilling per_minute
  // units per 60e9 ns adds exactly per_minute per elapsed ns.
  absl::int128 level_;
  absl::Time last_;
};

class RateLimiter {
 public:
  using Clock = std::function<absl::Time()>;

  RateLimiter(RateLimits limits, Clock clock);

  // Admits one request that may use up to `tokens` tokens (estimated prompt +
  // max output). RESOURCE_EXHAUSTED with reason "client_rate_limited" and a
  // retry-after payload when it must wait; INVALID_ARGUMENT for tokens < 0.
  [[nodiscard]] absl::Status TryAcquire(int64_t tokens);
  // Corrects the token bucket once the real usage is known: positive debits,
  // negative refunds.
  void Adjust(int64_t delta_tokens);
  // Whether TryAcquire(tokens) would succeed now (for GetLoad.accepting).
  bool WouldAdmit(int64_t tokens);

  const RateLimits& limits() const { return limits_; }

 private:
  const RateLimits limits_;
  const Clock clock_;
  absl::Mutex mu_;
  TokenBucket requests_ ABSL_GUARDED_BY(mu_);
  TokenBucket tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_RATE_LIMITER_H_
