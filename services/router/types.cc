#include "services/router/types.h"

namespace tiermesh::router {

absl::string_view TaskTypeName(TaskType t) {
  switch (t) {
    case TaskType::kChat:
      return "chat";
    case TaskType::kTool:
      return "tool";
    case TaskType::kCode:
      return "code";
    case TaskType::kMath:
      return "math";
    case TaskType::kReasoning:
      return "reasoning";
    case TaskType::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::string_view UserTierName(UserTier t) {
  switch (t) {
    case UserTier::kFree:
      return "free";
    case UserTier::kPaid:
      return "paid";
    case UserTier::kByok:
      return "byok";
  }
  return "free";
}

absl::string_view PriorityName(Priority p) {
  switch (p) {
    case Priority::kCost:
      return "cost";
    case Priority::kBalanced:
      return "balanced";
    case Priority::kQuality:
      return "quality";
    case Priority::kLatency:
      return "latency";
    case Priority::kUnspecified:
      break;
  }
  return "unspecified";
}

absl::string_view TierLocationName(TierLocation l) {
  return l == TierLocation::kLocal ? "local" : "cloud";
}

absl::string_view BreakerStateName(BreakerState s) {
  switch (s) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kOpen:
      return "open";
    case BreakerState::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

bool ParseTaskType(absl::string_view name, TaskType* out) {
  for (TaskType t :
       {TaskType::kChat, TaskType::kTool, TaskType::kCode, TaskType::kMath, TaskType::kReasoning}) {
    if (name == TaskTypeName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

bool ParseUserTier(absl::string_view name, UserTier* out) {
  for (UserTier t : {UserTier::kFree, UserTier::kPaid, UserTier::kByok}) {
    if (name == UserTierName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

bool ParsePriority(absl::string_view name, Priority* out) {
  for (Priority p :
       {Priority::kCost, Priority::kBalanced, Priority::kQuality, Priority::kLatency}) {
    if (name == PriorityName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

absl::Status Decode(const config::Node& node, TaskType* out) {
  return config::DecodeEnum(node, out,
                            {{"chat", TaskType::kChat},
                             {"tool", TaskType::kTool},
                             {"code", TaskType::kCode},
                             {"math", TaskType::kMath},
                             {"reasoning", TaskType::kReasoning}});
}

absl::Status Decode(const config::Node& node, UserTier* out) {
  return config::DecodeEnum(
      node, out, {{"free", UserTier::kFree}, {"paid", UserTier::kPaid}, {"byok", UserTier::kByok}});
}

absl::Status Decode(const config::Node& node, Priority* out) {
  return config::DecodeEnum(node, out,
                            {{"cost", Priority::kCost},
                             {"balanced", Priority::kBalanced},
                             {"quality", Priority::kQuality},
                             {"latency", Priority::kLatency}});
}

absl::Status Decode(const config::Node& node, TierLocation* out) {
  return config::DecodeEnum(node, out,
                            {{"local", TierLocation::kLocal}, {"cloud", TierLocation::kCloud}});
}

}  // namespace tiermesh::router
