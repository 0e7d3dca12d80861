// The worker's residency decisions, as pure functions: which model to unload to make room
// (least recently used, idle ones first), how long to wait before restarting a crashed
// llama-server (exponential backoff), and whether a request gets a slot, a place in the queue
// or a refusal. ModelManager applies them; tests check them with tables.
//
//   std::optional<std::string> victim = ChooseEviction(views, "big", /*max_loaded=*/1);
//   absl::Duration wait = RestartDelay(/*consecutive_failures=*/3, 500ms, 30s);  // 2 s
//   switch (Admit(running, capacity, queued, max_queue)) { ... }
#ifndef TIERMESH_SERVICES_WORKER_RESIDENCY_H_
#define TIERMESH_SERVICES_WORKER_RESIDENCY_H_

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace tiermesh::worker {

enum class Residency {
  kUnloaded,    // managed, no process
  kLoading,     // process starting / model loading
  kReady,       // serving
  kUnloading,   // draining, then stopped
  kFailed,      // the last load failed (error kept); a later request or LoadModel retries
  kRestarting,  // crashed; restarting after a backoff (requests fail fast meanwhile)
  kUnavailable  // external server not answering /health with 200
};

const char* ResidencyName(Residency residency);

// What eviction needs to know of one model.
struct ResidentView {
  std::string name;
  bool managed = true;
  Residency residency = Residency::kUnloaded;
  int in_flight = 0;
  absl::Time last_used = absl::InfinitePast();
};

// Holds a process: loading, ready, unloading or restarting (its slot is spoken for).
bool OccupiesResidency(Residency residency);

// The model to unload so that `incoming` can load without more than `max_loaded` managed models
// resident, or nullopt when there is room already. Candidates are the managed models other than
// `incoming` that are READY or RESTARTING: restarting ones first (they have no process), then
// idle before busy (a busy one is drained first), then the least recently used. When room is
// needed but no model can be chosen (the others are loading or unloading), returns "" (wait and
// ask again).
[[nodiscard]] std::optional<std::string> ChooseEviction(const std::vector<ResidentView>& models,
                                                        const std::string& incoming,
                                                        int max_loaded);

// initial * 2^(failures-1), capped at `max` (failures >= 1; 0 or less: no wait).
[[nodiscard]] absl::Duration RestartDelay(int consecutive_failures, absl::Duration initial,
                                          absl::Duration max);

enum class Admission { kRun, kQueue, kReject };

// A request arriving for a model with `running` requests on `capacity` slots and `queued`
// waiting: run now, wait in the queue (at most `max_queue` wait), or refuse at once
// (RESOURCE_EXHAUSTED). capacity <= 0 means unknown: run.
[[nodiscard]] Admission Admit(int running, int capacity, int queued, int max_queue);

// Fault injection: whether request number `n` (0-based) is failed when a share `ratio` of
// requests must fail, spread evenly (exactly floor(n * ratio) of the first n fail).
[[nodiscard]] bool InjectFault(uint64_t n, double ratio);

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_RESIDENCY_H_
