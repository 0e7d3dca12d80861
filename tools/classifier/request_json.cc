#include "tools/classifier/request_json.h"

#include "absl/strings/str_cat.h"

namespace tiermesh::classifier {
namespace {

using nlohmann::json;

absl::StatusOr<Role> ParseRole(const json& value) {
  if (!value.is_string()) return absl::InvalidArgumentError("message `role` must be a string");
  const std::string role = value.get<std::string>();
  if (role == "user") return Role::kUser;
  if (role == "system" || role == "developer") return Role::kSystem;
  if (role == "assistant" || role == "model") return Role::kAssistant;
  if (role == "tool" || role == "function") return Role::kTool;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown message role \"", role, "\" (want user, system, developer, assistant or tool)"));
}

absl::StatusOr<std::string> ParseContent(const json& value) {
  if (value.is_null()) return std::string();
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    std::string text;
    for (const json& part : value) {
      if (!part.is_object()) return absl::InvalidArgumentError("content parts must be objects");
      auto it = part.find("text");
      if (it == part.end()) continue;  // images and other parts carry no text
      if (!it->is_string())
        return absl::InvalidArgumentError("content part `text` must be a string");
      if (!text.empty()) text.push_back('\n');
      text += it->get<std::string>();
    }
    return text;
  }
  return absl::InvalidArgumentError("message `content` must be a string or an array of parts");
}

absl::StatusOr<OwnedRequest::Tool> ParseTool(const json& value) {
  if (!value.is_object()) return absl::InvalidArgumentError("each tool must be an object");
  const json* fn = &value;
  if (auto it = value.find("function"); it != value.end() && it->is_object()) fn = &*it;
  OwnedRequest::Tool tool;
  auto name = fn->find("name");
  if (name == fn->end() || !name->is_string()) {
    return absl::InvalidArgumentError("tool needs a string `name`");
  }
  tool.name = name->get<std::string>();
  if (auto d = fn->find("description"); d != fn->end()) {
    if (!d->is_string()) return absl::InvalidArgumentError("tool `description` must be a string");
    tool.description = d->get<std::string>();
  }
  if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null()) {
    tool.parameters_json_schema = p->is_string() ? p->get<std::string>() : p->dump();
  }
  return tool;
}

}  // namespace

ClassifyInput OwnedRequest::View() const {
  ClassifyInput input;
  input.messages.reserve(messages.size());
  for (const Message& m : messages) input.messages.push_back({m.role, m.content, m.tool_calls});
  input.tools.reserve(tools.size());
  for (const Tool& t : tools) {
    input.tools.push_back({t.name, t.description, t.parameters_json_schema});
  }
  return input;
}

std::string OwnedRequest::JoinedText() const {
  std::string text;
  for (const Message& m : messages) {
    if (!text.empty()) text.push_back('\n');
    text += m.content;
  }
  return text;
}

absl::StatusOr<OwnedRequest> ParseRequest(const json& object) {
  if (!object.is_object()) return absl::InvalidArgumentError("line is not a JSON object");
  OwnedRequest r;
  try {
    if (auto id = object.find("id"); id != object.end() && !id->is_null()) {
      if (id->is_string()) {
        r.id = id->get<std::string>();
      } else if (id->is_number_integer()) {
        r.id = id->dump();
      } else {
        return absl::InvalidArgumentError("`id` must be a string or an integer");
      }
    }
    const auto text = object.find("text");
    const auto messages = object.find("messages");
    const bool has_text = text != object.end() && !text->is_null();
    const bool has_messages = messages != object.end() && !messages->is_null();
    if (has_text && has_messages) {
      return absl::InvalidArgumentError("set either `text` or `messages`, not both");
    }
    if (!has_text && !has_messages) {
      return absl::InvalidArgumentError("object has neither `text` nor `messages`");
    }
    if (has_text) {
      if (!text->is_string()) return absl::InvalidArgumentError("`text` must be a string");
      r.messages.push_back({Role::kUser, text->get<std::string>(), 0});
    } else {
      if (!messages->is_array()) return absl::InvalidArgumentError("`messages` must be an array");
      for (const json& m : *messages) {
        if (!m.is_object()) return absl::InvalidArgumentError("each message must be an object");
        OwnedRequest::Message message;
        if (auto role = m.find("role"); role != m.end()) {
          absl::StatusOr<Role> parsed = ParseRole(*role);
          if (!parsed.ok()) return parsed.status();
          message.role = *parsed;
        }
        if (auto content = m.find("content"); content != m.end()) {
          absl::StatusOr<std::string> parsed = ParseContent(*content);
          if (!parsed.ok()) return parsed.status();
          message.content = *std::move(parsed);
        }
        if (auto calls = m.find("tool_calls"); calls != m.end() && calls->is_array()) {
          message.tool_calls = static_cast<int>(calls->size());
        }
        r.messages.push_back(std::move(message));
      }
    }
    if (auto tools = object.find("tools"); tools != object.end() && !tools->is_null()) {
      if (!tools->is_array()) return absl::InvalidArgumentError("`tools` must be an array");
      for (const json& t : *tools) {
        absl::StatusOr<OwnedRequest::Tool> tool = ParseTool(t);
        if (!tool.ok()) return tool.status();
        r.tools.push_back(*std::move(tool));
      }
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad request object: ", e.what()));
  }
  return r;
}

json RequestToJson(const OwnedRequest& request) {
  json out = json::object();
  if (!request.id.empty()) out["id"] = request.id;
  if (request.messages.size() == 1 && request.messages[0].role == Role::kUser &&
      request.messages[0].tool_calls == 0) {
    out["text"] = request.messages[0].content;
  } else {
    json messages = json::array();
    for (const OwnedRequest::Message& m : request.messages) {
      std::string role = "user";
      if (m.role == Role::kSystem) role = "system";
      if (m.role == Role::kAssistant) role = "assistant";
      if (m.role == Role::kTool) role = "tool";
      messages.push_back({{"role", role}, {"content", m.content}});
    }
    out["messages"] = messages;
  }
  if (!request.tools.empty()) {
    json tools = json::array();
    for (const OwnedRequest::Tool& t : request.tools) {
      json tool = {{"name", t.name}, {"description", t.description}};
      if (!t.parameters_json_schema.empty()) {
        tool["parameters"] = json::parse(t.parameters_json_schema, nullptr, false);
        if (tool["parameters"].is_discarded()) tool["parameters"] = t.parameters_json_schema;
      }
      tools.push_back(tool);
    }
    out["tools"] = tools;
  }
  return out;
}

}  // namespace tiermesh::classifier
