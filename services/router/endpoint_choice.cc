#include "services/router/endpoint_choice.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace tiermesh::router {
namespace {

constexpr double kTieEpsilon = 1e-9;

double NonNegative(int32_t v) { return v < 0 ? 0.0 : static_cast<double>(v); }

double Ratio(float v) {
  if (!std::isfinite(v)) return 1.0;  // unknown: assume the worst
  return std::clamp(static_cast<double>(v), 0.0, 1.0);
}

}  // namespace

EndpointScore ScoreEndpoint(const EndpointLoad& load) {
  EndpointScore s;
  const double in_flight = NonNegative(load.router_in_flight);
  if (!load.reported) {
    s.usable = true;
    s.load = 0.5 + in_flight;
    s.why = absl::StrFormat("no recent load report; %d in flight from this router",
                            static_cast<int>(in_flight));
    return s;
  }
  if (!load.ready) {
    s.why = "not ready";
    return s;
  }
  if (!load.model_ready) {
    s.why = "model not ready";
    return s;
  }
  if (!load.accepting) {
    s.why = "not accepting requests (saturated)";
    return s;
  }
  const double waiting = NonNegative(load.deferred_requests) + NonNegative(load.queue_depth);
  s.usable = true;
  if (load.slots_total > 0) {
    const double busy = std::max(NonNegative(load.slots_busy), in_flight);
    const double kv = Ratio(load.kv_cache_usage_ratio);
    s.load = (busy + waiting) / static_cast<double>(load.slots_total) + 0.5 * kv;
    s.why = absl::StrFormat("%g/%d slots busy, %g waiting, KV cache %.0f%%", busy, load.slots_total,
                            waiting, kv * 100.0);
  } else {
    s.load = 0.01 * (in_flight + waiting);
    s.why = absl::StrFormat("no slot limit; %g in flight, %g waiting", in_flight, waiting);
  }
  return s;
}

absl::optional<size_t> ChooseEndpoint(const std::vector<EndpointLoad>& loads, uint64_t tie_break) {
  std::vector<double> scores(loads.size(), 0.0);
  std::vector<bool> usable(loads.size(), false);
  double best = 0.0;
  bool any = false;
  for (size_t i = 0; i < loads.size(); ++i) {
    const EndpointScore s = ScoreEndpoint(loads[i]);
    usable[i] = s.usable;
    scores[i] = s.load;
    if (s.usable && (!any || s.load < best)) {
      best = s.load;
      any = true;
    }
  }
  if (!any) return absl::nullopt;
  std::vector<size_t> tied;
  for (size_t i = 0; i < loads.size(); ++i) {
    if (usable[i] && scores[i] <= best + kTieEpsilon) tied.push_back(i);
  }
  return tied[static_cast<size_t>(tie_break % tied.size())];
}

}  // namespace tiermesh::router
