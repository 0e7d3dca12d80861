// The router's small vocabulary: task types, user tiers, priorities, tier
// locations and circuit states, with the names used in the policy YAML, in
// decisions and in metric labels. The router's pure code uses these instead
// of the generated proto enums so that it stays free of I/O types; the gRPC
// adapter converts at the edge.
//
//   UserTier t;
//   if (ParseUserTier("paid", &t)) ...;       // false on an unknown name
//   UserTierName(UserTier::kByok);            // "byok"
#ifndef TIERMESH_SERVICES_ROUTER_TYPES_H_
#define TIERMESH_SERVICES_ROUTER_TYPES_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "services/common/config/schema.h"

namespace tiermesh::router {

// Money in exact integer nano-USD (1e-9 USD), as in tiermesh.v1.Cost.
using NanoUsd = int64_t;
inline constexpr NanoUsd kNanoPerUsd = 1'000'000'000;

// Mirrors tiermesh.v1.TaskType; kUnspecified when the classifier gave none.
enum class TaskType { kUnspecified, kChat, kTool, kCode, kMath, kReasoning };
// Who is paying: the operator (free, paid) or the caller's own key (byok).
enum class UserTier { kFree, kPaid, kByok };
// Mirrors tiermesh.v1.Priority.
enum class Priority { kUnspecified, kCost, kBalanced, kQuality, kLatency };
// Where a tier runs: local tiers cost the operator nothing per token.
enum class TierLocation { kLocal, kCloud };
enum class BreakerState { kClosed, kOpen, kHalfOpen };

// Names: "chat", "tool", "code", "math", "reasoning" ("unspecified").
absl::string_view TaskTypeName(TaskType t);
// "free", "paid", "byok".
absl::string_view UserTierName(UserTier t);
// "cost", "balanced", "quality", "latency" ("unspecified").
absl::string_view PriorityName(Priority p);
// "local", "cloud".
absl::string_view TierLocationName(TierLocation l);
// "closed", "open", "half_open" (as in tiermesh.v1.Candidate.circuit_state).
absl::string_view BreakerStateName(BreakerState s);

// Name -> value; false on an unknown name (the unspecified values are not
// accepted by name).
[[nodiscard]] bool ParseTaskType(absl::string_view name, TaskType* out);
[[nodiscard]] bool ParseUserTier(absl::string_view name, UserTier* out);
[[nodiscard]] bool ParsePriority(absl::string_view name, Priority* out);

// Config decoders (found by argument-dependent lookup from config::ObjectReader).
[[nodiscard]] absl::Status Decode(const config::Node& node, TaskType* out);
[[nodiscard]] absl::Status Decode(const config::Node& node, UserTier* out);
[[nodiscard]] absl::Status Decode(const config::Node& node, Priority* out);
[[nodiscard]] absl::Status Decode(const config::Node& node, TierLocation* out);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_TYPES_H_
