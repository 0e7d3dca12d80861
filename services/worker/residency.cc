#include "services/worker/residency.h"

#include <algorithm>
#include <tuple>

namespace tiermesh::worker {

const char* ResidencyName(Residency residency) {
  switch (residency) {
    case Residency::kUnloaded:
      return "unloaded";
    case Residency::kLoading:
      return "loading";
    case Residency::kReady:
      return "ready";
    case Residency::kUnloading:
      return "unloading";
    case Residency::kFailed:
      return "failed";
    case Residency::kRestarting:
      return "restarting";
    case Residency::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

bool OccupiesResidency(Residency residency) {
  return residency == Residency::kLoading || residency == Residency::kReady ||
         residency == Residency::kUnloading || residency == Residency::kRestarting;
}

std::optional<std::string> ChooseEviction(const std::vector<ResidentView>& models,
                                          const std::string& incoming, int max_loaded) {
  int resident = 0;
  const ResidentView* best = nullptr;
  for (const ResidentView& m : models) {
    if (!m.managed || m.name == incoming || !OccupiesResidency(m.residency)) continue;
    ++resident;
    if (m.residency != Residency::kReady && m.residency != Residency::kRestarting) continue;
    auto key = [](const ResidentView& v) {
      return std::make_tuple(v.residency != Residency::kRestarting, v.in_flight > 0, v.last_used,
                             v.name);
    };
    if (best == nullptr || key(m) < key(*best)) {
      best = &m;
    }
  }
  if (resident < max_loaded) return std::nullopt;
  return best == nullptr ? std::string() : best->name;
}

absl::Duration RestartDelay(int consecutive_failures, absl::Duration initial, absl::Duration max) {
  if (consecutive_failures <= 0) return absl::ZeroDuration();
  absl::Duration delay = initial;
  for (int i = 1; i < consecutive_failures && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

Admission Admit(int running, int capacity, int queued, int max_queue) {
  if (capacity <= 0 || (running < capacity && queued == 0)) return Admission::kRun;
  if (queued < max_queue) return Admission::kQueue;
  return Admission::kReject;
}

bool InjectFault(uint64_t n, double ratio) {
  if (!(ratio > 0)) return false;
  if (ratio >= 1) return true;
  return std::floor(static_cast<double>(n + 1) * ratio) > std::floor(static_cast<double>(n) * ratio);
}

}  // namespace tiermesh::worker
