#include "services/classifier/proto_convert.h"

#include "absl/status/status.h"

#include "services/classifier/text.h"

namespace tiermesh::classifier {
namespace {

Role RoleFromProto(tiermesh::v1::Role role) {
  switch (role) {
    case tiermesh::v1::ROLE_SYSTEM:
      return Role::kSystem;
    case tiermesh::v1::ROLE_USER:
      return Role::kUser;
    case tiermesh::v1::ROLE_ASSISTANT:
      return Role::kAssistant;
    case tiermesh::v1::ROLE_TOOL:
      return Role::kTool;
    default:
      return Role::kUnspecified;
  }
}

}  // namespace

absl::StatusOr<ClassifyInput> InputFromProto(const tiermesh::v1::ClassifyRequest& request) {
  if (!request.text().empty() && request.messages_size() > 0) {
    return absl::InvalidArgumentError(
        "set either `messages` or `text`, not both (text is a shorthand for one user message)");
  }
  ClassifyInput input;
  if (!request.text().empty()) {
    input.messages.push_back(MessageView{Role::kUser, request.text(), 0});
  }
  input.messages.reserve(request.messages_size());
  for (const tiermesh::v1::ChatMessage& m : request.messages()) {
    input.messages.push_back(
        MessageView{RoleFromProto(m.role()), m.content(), m.tool_calls_size()});
  }
  input.tools.reserve(request.tools_size());
  for (const tiermesh::v1::Tool& t : request.tools()) {
    input.tools.push_back(ToolView{t.name(), t.description(), t.parameters_json_schema()});
  }
  return input;
}

tiermesh::v1::TaskType TaskToProto(TaskType task) {
  switch (task) {
    case TaskType::kChat:
      return tiermesh::v1::TASK_TYPE_CHAT;
    case TaskType::kTool:
      return tiermesh::v1::TASK_TYPE_TOOL;
    case TaskType::kCode:
      return tiermesh::v1::TASK_TYPE_CODE;
    case TaskType::kMath:
      return tiermesh::v1::TASK_TYPE_MATH;
    case TaskType::kReasoning:
      return tiermesh::v1::TASK_TYPE_REASONING;
    case TaskType::kUnspecified:
      break;
  }
  return tiermesh::v1::TASK_TYPE_UNSPECIFIED;
}

tiermesh::v1::Classification ToProto(const Classification& c) {
  tiermesh::v1::Classification out;
  out.set_task(TaskToProto(c.task));
  for (int i = 0; i < kNumTasks; ++i) {
    tiermesh::v1::TaskProbability* p = out.add_probabilities();
    p->set_task(TaskToProto(kTaskOrder[i]));
    p->set_probability(c.probabilities[i]);
  }
  out.set_confidence(c.confidence);
  out.set_complexity(c.complexity);
  out.set_approx_tokens(c.approx_tokens);
  out.set_pii_detected(c.pii_detected);
  for (const std::string& kind : c.pii_kinds) out.add_pii_kinds(kind);
  for (const Reason& r : c.reasons) {
    tiermesh::v1::ClassificationReason* reason = out.add_reasons();
    reason->set_feature(SanitizeUtf8(r.feature));
    reason->set_weight(r.weight);
  }
  out.set_model_version(SanitizeUtf8(c.model_version));
  return out;
}

}  // namespace tiermesh::classifier
