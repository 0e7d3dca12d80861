// Plain C++ types of the classifier's input and verdict. They map 1:1 onto
// tiermesh.v1.ClassifyRequest / tiermesh.v1.Classification (see
// proto_convert.h), so the pure logic needs no protobuf.
//
//   std::vector<MessageView> messages = {{Role::kUser, "weather in Paris?"}};
//   ClassifyInput input{messages, /*tools=*/{}};
//   absl::StatusOr<Classification> c = classifier.Classify(input);
//   if (c.ok() && c->task == TaskType::kTool) ...
#ifndef TIERMESH_SERVICES_CLASSIFIER_TYPES_H_
#define TIERMESH_SERVICES_CLASSIFIER_TYPES_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tiermesh::classifier {

// Same numbering as tiermesh.v1.Role.
enum class Role : uint8_t { kUnspecified = 0, kSystem = 1, kUser = 2, kAssistant = 3, kTool = 4 };

// Same numbering as tiermesh.v1.TaskType.
enum class TaskType : uint8_t {
  kUnspecified = 0,
  kChat = 1,
  kTool = 2,
  kCode = 3,
  kMath = 4,
  kReasoning = 5,
};

// The five task types in model order (class index i <-> kTaskOrder[i]).
inline constexpr int kNumTasks = 5;
inline constexpr std::array<TaskType, kNumTasks> kTaskOrder = {
    TaskType::kChat, TaskType::kTool, TaskType::kCode, TaskType::kMath, TaskType::kReasoning};

// Class index of a task (0..4), or -1 for kUnspecified.
int TaskIndex(TaskType task);
// "chat", "tool", "code", "math", "reasoning" ("unspecified" otherwise).
std::string_view TaskName(TaskType task);
// Inverse of TaskName; nullopt for an unknown name.
std::optional<TaskType> TaskFromName(std::string_view name);

// One conversation turn. Views: the caller keeps the text alive during the
// call.
struct MessageView {
  Role role = Role::kUser;
  std::string_view content;
  // Tool calls made by an assistant turn (only the count matters here).
  int tool_call_count = 0;
};

// A function offered by the caller.
struct ToolView {
  std::string_view name;
  std::string_view description;
  std::string_view parameters_json_schema;
};

struct ClassifyInput {
  std::vector<MessageView> messages;
  std::vector<ToolView> tools;
};

// One feature that weighed in the verdict.
struct Reason {
  std::string feature;  // "word:weather", "tools_offered", "turns", ...
  float weight = 0;     // log-odds contribution towards the chosen task or complexity
};

// The verdict; mirrors tiermesh.v1.Classification field for field.
struct Classification {
  TaskType task = TaskType::kUnspecified;
  // Indexed like kTaskOrder; sums to 1.
  std::array<float, kNumTasks> probabilities{};
  float confidence = 0;
  float complexity = 0;
  int32_t approx_tokens = 0;
  bool pii_detected = false;
  std::vector<std::string> pii_kinds;
  std::vector<Reason> reasons;
  std::string model_version;
};

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_TYPES_H_
