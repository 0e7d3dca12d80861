#include "services/classifier/types.h"

namespace tiermesh::classifier {

int TaskIndex(TaskType task) {
  for (int i = 0; i < kNumTasks; ++i) {
    if (kTaskOrder[i] == task) return i;
  }
  return -1;
}

std::string_view TaskName(TaskType task) {
  switch (task) {
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

std::optional<TaskType> TaskFromName(std::string_view name) {
  for (TaskType t : kTaskOrder) {
    if (TaskName(t) == name) return t;
  }
  return std::nullopt;
}

}  // namespace tiermesh::classifier
