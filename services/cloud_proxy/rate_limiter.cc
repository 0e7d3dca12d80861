#include "services/cloud_proxy/rate_limiter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/cloud_proxy/errors.h"
#include "services/common/status/status.h"

namespace tiermesh::cloud {
namespace {

constexpr int64_t kNanosPerMinute = 60'000'000'000;

absl::int128 Units(int64_t amount) { return absl::int128(amount) * kNanosPerMinute; }

}  // namespace

TokenBucket::TokenBucket(int64_t per_minute, absl::Time now)
    : per_minute_(std::max<int64_t>(0, per_minute)), level_(Units(per_minute_)), last_(now) {}

void TokenBucket::Refill(absl::Time now) {
  if (per_minute_ == 0 || now <= last_) return;  // a clock stepping back never removes tokens
  const absl::int128 elapsed_ns = absl::ToInt64Nanoseconds(now - last_);
  last_ = now;
  const absl::int128 capacity = Units(per_minute_);
  if (level_ >= capacity) return;
  // Cap the gain before multiplying: elapsed_ns can be huge after idling.
  const absl::int128 gap = capacity - level_;
  const absl::int128 gain_ns_needed = (gap + per_minute_ - 1) / per_minute_;
  level_ = elapsed_ns >= gain_ns_needed ? capacity : level_ + elapsed_ns * per_minute_;
}

absl::Duration TokenBucket::WaitFor(int64_t amount, absl::Time now) {
  if (unlimited()) return absl::ZeroDuration();
  if (amount > per_minute_) return absl::InfiniteDuration();
  Refill(now);
  const absl::int128 need = Units(amount);
  if (level_ >= need) return absl::ZeroDuration();
  const absl::int128 ns = (need - level_ + per_minute_ - 1) / per_minute_;
  return absl::Nanoseconds(static_cast<int64_t>(ns));
}

void TokenBucket::Take(int64_t amount, absl::Time now) {
  if (unlimited()) return;
  Refill(now);
  level_ -= Units(amount);
}

void TokenBucket::Give(int64_t amount, absl::Time now) {
  if (unlimited()) return;
  Refill(now);
  level_ = std::min(level_ + Units(amount), Units(per_minute_));
}

int64_t TokenBucket::Available(absl::Time now) {
  if (unlimited()) return INT64_MAX;
  Refill(now);
  absl::int128 whole = level_ / kNanosPerMinute;
  if (level_ < 0 && whole * kNanosPerMinute != level_) whole -= 1;  // floor
  return static_cast<int64_t>(whole);
}

RateLimiter::RateLimiter(RateLimits limits, Clock clock)
    : limits_(limits),
      clock_(std::move(clock)),
      requests_(limits.requests_per_minute, clock_()),
      tokens_(limits.tokens_per_minute, clock_()) {}

absl::Status RateLimiter::TryAcquire(int64_t tokens) {
  if (tokens < 0) return absl::InvalidArgumentError("negative token reservation");
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  if (limits_.tokens_per_minute > 0 && tokens > limits_.tokens_per_minute) {
    return WithReason(absl::ResourceExhaustedError(
                          absl::StrCat("request needs up to ", tokens,
                                       " tokens, more than the provider's client-side limit of ",
                                       limits_.tokens_per_minute, " tokens per minute")),
                      kReasonClientRateLimited);
  }
  const absl::Duration wait = std::max(requests_.WaitFor(1, now), tokens_.WaitFor(tokens, now));
  if (wait > absl::ZeroDuration()) {
    absl::Status status = WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "client-side rate limit reached (", limits_.requests_per_minute, " requests/min, ",
            limits_.tokens_per_minute, " tokens/min); retry in ", absl::FormatDuration(wait))),
        kReasonClientRateLimited);
    return WithRetryAfter(std::move(status), wait);
  }
  requests_.Take(1, now);
  tokens_.Take(tokens, now);
  return absl::OkStatus();
}

void RateLimiter::Adjust(int64_t delta_tokens) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  if (delta_tokens > 0) {
    tokens_.Take(delta_tokens, now);
  } else if (delta_tokens < 0) {
    tokens_.Give(-delta_tokens, now);
  }
}

bool RateLimiter::WouldAdmit(int64_t tokens) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  if (limits_.tokens_per_minute > 0 && tokens > limits_.tokens_per_minute) return false;
  return requests_.WaitFor(1, now) == absl::ZeroDuration() &&
         tokens_.WaitFor(tokens, now) == absl::ZeroDuration();
}

}  // namespace tiermesh::cloud
