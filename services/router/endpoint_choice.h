// Which replica (endpoint) of a backend gets the next call: the one with the
// least load as reported by its GetLoad (busy and total slots, deferred and
// queued requests, KV-cache use), not round robin, so that a replica busy
// with long generations stops receiving new ones while idle replicas exist.
// Pure: the router keeps each endpoint's latest report (and how many calls it
// has itself sent there since) and asks ChooseEndpoint.
//
//   std::vector<EndpointLoad> loads = {{"10.0.0.1:50052", ...}, {"10.0.0.2:50052", ...}};
//   absl::optional<size_t> pick = ChooseEndpoint(loads, request_counter);
//   if (!pick) ...;     // every replica refuses: treat as RESOURCE_EXHAUSTED (spill over)
//
// Scoring (lower load is better):
//   - not ready, a model not ready, or not accepting: not usable;
//   - with a fresh report and slots: (max(slots_busy, router_in_flight) +
//     deferred + queue_depth) / slots_total, plus 0.5 x KV-cache use (a nearly
//     full cache means long contexts and slow admissions);
//   - with a fresh report and no slot limit (cloud): 0.01 x (in flight + queue +
//     deferred), so that cloud replicas share evenly;
//   - without a fresh report: 0.5 + router_in_flight (unknown is assumed half
//     busy, so new replicas get traffic without being flooded).
// Ties go to `tie_break` modulo the tied count, so equal replicas share.
#ifndef TIERMESH_SERVICES_ROUTER_ENDPOINT_CHOICE_H_
#define TIERMESH_SERVICES_ROUTER_ENDPOINT_CHOICE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/optional.h"

namespace tiermesh::router {

struct EndpointLoad {
  std::string endpoint;
  // A recent GetLoad answer exists (stale reports should be passed as false).
  bool reported = false;
  // GetLoadResponse.ready.
  bool ready = true;
  // ModelLoad of the backend's model: state READY and `accepting`.
  bool model_ready = true;
  bool accepting = true;
  int32_t slots_busy = 0;
  int32_t slots_total = 0;
  int32_t deferred_requests = 0;
  int32_t queue_depth = 0;
  float kv_cache_usage_ratio = 0.0f;
  // Calls this router has in flight to the endpoint now.
  int32_t router_in_flight = 0;
};

struct EndpointScore {
  bool usable = false;
  // Lower is better; meaningful only when usable.
  double load = 0.0;
  // Why not usable, or how the load was estimated: for Explain and logs.
  std::string why;
};

// Out-of-range inputs (negative counts, NaN ratios) are clamped, never trusted.
EndpointScore ScoreEndpoint(const EndpointLoad& load);

// Index of the least-loaded usable endpoint; nullopt when none is usable.
absl::optional<size_t> ChooseEndpoint(const std::vector<EndpointLoad>& loads, uint64_t tie_break);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_ENDPOINT_CHOICE_H_
