#include "services/worker/llama_api.h"

#include <cmath>
#include <exception>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "services/common/http/http_client.h"
#include "services/common/status/status.h"
#include "services/common/text/utf8.h"

namespace tiermesh::worker {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;
using tiermesh::v1::ChatMessage;
using tiermesh::v1::GenerateRequest;
using tiermesh::v1::GenerationParams;
using tiermesh::v1::ToolChoice;

constexpr size_t kMaxErrorMessageBytes = 512;

absl::Status Invalid(absl::string_view message) { return absl::InvalidArgumentError(message); }

bool IsValidToolName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Parses `text` as JSON without exceptions; nullopt when malformed.
absl::optional<Json> ParseJson(absl::string_view text) {
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::nullopt;
  return parsed;
}

// An empty text means "no arguments" ({}); anything else must be a JSON object.
absl::StatusOr<Json> ParseJsonObject(absl::string_view text, absl::string_view what) {
  if (text.empty()) return Json::object();
  absl::optional<Json> parsed = ParseJson(text);
  if (!parsed.has_value() || !parsed->is_object()) {
    return Invalid(absl::StrCat(what, " must be a JSON object"));
  }
  return *std::move(parsed);
}

absl::string_view RoleName(tiermesh::v1::Role role) {
  switch (role) {
    case tiermesh::v1::ROLE_SYSTEM:
      return "system";
    case tiermesh::v1::ROLE_USER:
      return "user";
    case tiermesh::v1::ROLE_ASSISTANT:
      return "assistant";
    case tiermesh::v1::ROLE_TOOL:
      return "tool";
    default:
      return "";
  }
}

absl::Status ValidateMessage(const ChatMessage& m, int index) {
  const std::string where = absl::StrCat("messages[", index, "]");
  if (RoleName(m.role()).empty()) {
    return Invalid(absl::StrCat(where, ".role must be SYSTEM, USER, ASSISTANT or TOOL"));
  }
  // Protobuf parsing already rejects invalid UTF-8 in proto3 strings; messages built in-process
  // (tests, other services' code) are checked here so that llama-server never sees them.
  if (!text::IsValidUtf8(m.content()) || !text::IsValidUtf8(m.name())) {
    return Invalid(absl::StrCat(where, " is not valid UTF-8"));
  }
  if (m.role() == tiermesh::v1::ROLE_TOOL && m.tool_call_id().empty()) {
    return Invalid(absl::StrCat(where, ": a TOOL message needs tool_call_id"));
  }
  if (m.role() != tiermesh::v1::ROLE_ASSISTANT && m.tool_calls_size() > 0) {
    return Invalid(absl::StrCat(where, ": only ASSISTANT messages carry tool_calls"));
  }
  for (int i = 0; i < m.tool_calls_size(); ++i) {
    const tiermesh::v1::ToolCall& call = m.tool_calls(i);
    const std::string call_where = absl::StrCat(where, ".tool_calls[", i, "]");
    if (!IsValidToolName(call.name())) {
      return Invalid(absl::StrCat(call_where, ".name must match [A-Za-z0-9_-]{1,64}"));
    }
    TIERMESH_RETURN_IF_ERROR(
        ParseJsonObject(call.arguments_json(), call_where + ".arguments_json").status());
  }
  return absl::OkStatus();
}

absl::Status ValidateParams(const GenerationParams& p) {
  if (p.has_max_tokens() && (p.max_tokens() < 1 || p.max_tokens() > kMaxTokensLimit)) {
    return Invalid(absl::StrCat("params.max_tokens is ", p.max_tokens(), "; it must be in [1, ",
                                kMaxTokensLimit, "]"));
  }
  if (p.has_temperature() &&
      (!std::isfinite(p.temperature()) || p.temperature() < 0 || p.temperature() > 2)) {
    return Invalid(
        absl::StrCat("params.temperature is ", p.temperature(), "; it must be in [0, 2]"));
  }
  if (p.has_top_p() && (!std::isfinite(p.top_p()) || p.top_p() <= 0 || p.top_p() > 1)) {
    return Invalid(absl::StrCat("params.top_p is ", p.top_p(), "; it must be in (0, 1]"));
  }
  if (p.has_top_k() && (p.top_k() < 0 || p.top_k() > kMaxTopK)) {
    return Invalid(
        absl::StrCat("params.top_k is ", p.top_k(), "; it must be in [0, ", kMaxTopK, "]"));
  }
  if (p.stop_size() > kMaxStopSequences) {
    return Invalid(absl::StrCat("params.stop has ", p.stop_size(), " sequences; at most ",
                                kMaxStopSequences, " are allowed"));
  }
  for (int i = 0; i < p.stop_size(); ++i) {
    const std::string& stop = p.stop(i);
    if (stop.empty() || stop.size() > kMaxStopSequenceBytes || !text::IsValidUtf8(stop)) {
      return Invalid(absl::StrCat("params.stop[", i, "] must be 1..", kMaxStopSequenceBytes,
                                  " bytes of valid UTF-8"));
    }
  }
  // llama-server's seed is a uint32 (its all-ones value means "random").
  if (p.has_seed() && (p.seed() < 0 || p.seed() >= 0xFFFFFFFFLL)) {
    return Invalid(absl::StrCat("params.seed is ", p.seed(), "; it must be in [0, 4294967294]"));
  }
  if (p.has_presence_penalty() && (!std::isfinite(p.presence_penalty()) ||
                                   p.presence_penalty() < -2 || p.presence_penalty() > 2)) {
    return Invalid(absl::StrCat("params.presence_penalty is ", p.presence_penalty(),
                                "; it must be in [-2, 2]"));
  }
  if (p.has_frequency_penalty() && (!std::isfinite(p.frequency_penalty()) ||
                                    p.frequency_penalty() < -2 || p.frequency_penalty() > 2)) {
    return Invalid(absl::StrCat("params.frequency_penalty is ", p.frequency_penalty(),
                                "; it must be in [-2, 2]"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTools(const GenerateRequest& request) {
  if (request.tools_size() > kMaxTools) {
    return Invalid(absl::StrCat("tools has ", request.tools_size(), " entries; at most ", kMaxTools,
                                " are allowed"));
  }
  absl::flat_hash_set<std::string> names;
  for (int i = 0; i < request.tools_size(); ++i) {
    const tiermesh::v1::Tool& tool = request.tools(i);
    const std::string where = absl::StrCat("tools[", i, "]");
    if (!IsValidToolName(tool.name())) {
      return Invalid(absl::StrCat(where, ".name must match [A-Za-z0-9_-]{1,64}"));
    }
    if (!names.insert(tool.name()).second) {
      return Invalid(absl::StrCat(where, ".name '", tool.name(), "' is offered twice"));
    }
    if (!text::IsValidUtf8(tool.description())) {
      return Invalid(absl::StrCat(where, ".description is not valid UTF-8"));
    }
    TIERMESH_RETURN_IF_ERROR(
        ParseJsonObject(tool.parameters_json_schema(), where + ".parameters_json_schema").status());
  }
  const ToolChoice& choice = request.tool_choice();
  switch (choice.mode()) {
    case ToolChoice::MODE_UNSPECIFIED:
    case ToolChoice::MODE_AUTO:
    case ToolChoice::MODE_NONE:
      if (!choice.function_name().empty()) {
        return Invalid("tool_choice.function_name is only allowed with MODE_FUNCTION");
      }
      return absl::OkStatus();
    case ToolChoice::MODE_REQUIRED:
      if (request.tools_size() == 0) return Invalid("tool_choice REQUIRED needs tools");
      if (!choice.function_name().empty()) {
        return Invalid("tool_choice.function_name is only allowed with MODE_FUNCTION");
      }
      return absl::OkStatus();
    case ToolChoice::MODE_FUNCTION:
      if (!names.contains(choice.function_name())) {
        return Invalid(absl::StrCat("tool_choice.function_name '", choice.function_name(),
                                    "' is not one of the offered tools"));
      }
      return absl::OkStatus();
    default:
      return Invalid(
          absl::StrCat("tool_choice.mode ", static_cast<int>(choice.mode()), " is unknown"));
  }
}

OrderedJson MessageJson(const ChatMessage& m) {
  OrderedJson out = OrderedJson::object();
  out["role"] = std::string(RoleName(m.role()));
  out["content"] = m.content();
  if (!m.name().empty()) out["name"] = m.name();
  if (m.tool_calls_size() > 0) {
    OrderedJson calls = OrderedJson::array();
    for (const tiermesh::v1::ToolCall& call : m.tool_calls()) {
      OrderedJson function = OrderedJson::object();
      function["name"] = call.name();
      // OpenAI sends arguments as JSON text; validated above.
      function["arguments"] = call.arguments_json().empty() ? "{}" : call.arguments_json();
      OrderedJson entry = OrderedJson::object();
      if (!call.id().empty()) entry["id"] = call.id();
      entry["type"] = "function";
      entry["function"] = std::move(function);
      calls.push_back(std::move(entry));
    }
    out["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id().empty()) out["tool_call_id"] = m.tool_call_id();
  return out;
}

OrderedJson ToolJson(const tiermesh::v1::Tool& tool) {
  OrderedJson function = OrderedJson::object();
  function["name"] = tool.name();
  if (!tool.description().empty()) function["description"] = tool.description();
  if (tool.parameters_json_schema().empty()) {
    function["parameters"] = OrderedJson{{"type", "object"}, {"properties", OrderedJson::object()}};
  } else {
    function["parameters"] = OrderedJson::parse(tool.parameters_json_schema());  // validated
  }
  return OrderedJson{{"type", "function"}, {"function", std::move(function)}};
}

// Reading helpers that never throw: a wrong type is reported, a missing key is "absent".
const Json* Member(const Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status Malformed(absl::string_view what) {
  return absl::InternalError(absl::StrCat("llama-server sent a malformed response: ", what));
}

absl::StatusOr<std::string> StringMember(const Json& object, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr) return std::string();
  if (!value->is_string()) return Malformed(absl::StrCat("'", key, "' is not a string"));
  return value->get<std::string>();
}

absl::StatusOr<int64_t> IntMember(const Json& object, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr) return int64_t{0};
  if (!value->is_number_integer()) return Malformed(absl::StrCat("'", key, "' is not an integer"));
  return value->get<int64_t>();
}

absl::StatusOr<double> NumberMember(const Json& object, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr) return 0.0;
  if (!value->is_number()) return Malformed(absl::StrCat("'", key, "' is not a number"));
  return value->get<double>();
}

absl::StatusOr<LlamaUsage> ParseUsage(const Json& usage) {
  if (!usage.is_object()) return Malformed("'usage' is not an object");
  LlamaUsage out;
  TIERMESH_ASSIGN_OR_RETURN(out.prompt_tokens, IntMember(usage, "prompt_tokens"));
  TIERMESH_ASSIGN_OR_RETURN(out.completion_tokens, IntMember(usage, "completion_tokens"));
  if (const Json* details = Member(usage, "prompt_tokens_details"); details != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(out.cached_prompt_tokens, IntMember(*details, "cached_tokens"));
  }
  if (out.prompt_tokens < 0 || out.completion_tokens < 0 || out.cached_prompt_tokens < 0) {
    return Malformed("negative token counts in 'usage'");
  }
  return out;
}

absl::StatusOr<LlamaTimings> ParseTimings(const Json& timings) {
  if (!timings.is_object()) return Malformed("'timings' is not an object");
  LlamaTimings out;
  TIERMESH_ASSIGN_OR_RETURN(out.prompt_n, IntMember(timings, "prompt_n"));
  TIERMESH_ASSIGN_OR_RETURN(out.cache_n, IntMember(timings, "cache_n"));
  TIERMESH_ASSIGN_OR_RETURN(out.prompt_ms, NumberMember(timings, "prompt_ms"));
  TIERMESH_ASSIGN_OR_RETURN(out.predicted_n, IntMember(timings, "predicted_n"));
  TIERMESH_ASSIGN_OR_RETURN(out.predicted_ms, NumberMember(timings, "predicted_ms"));
  TIERMESH_ASSIGN_OR_RETURN(out.predicted_per_second,
                            NumberMember(timings, "predicted_per_second"));
  return out;
}

// The status an {"error": {...}} object describes (also used for HTTP error bodies).
absl::Status ErrorObjectToStatus(const Json& error, int http_status) {
  std::string message;
  std::string type;
  int64_t code = http_status;
  if (error.is_object()) {
    if (const Json* m = Member(error, "message"); m != nullptr && m->is_string()) {
      message = m->get<std::string>();
    }
    if (const Json* t = Member(error, "type"); t != nullptr && t->is_string()) {
      type = t->get<std::string>();
    }
    if (const Json* c = Member(error, "code"); c != nullptr && c->is_number_integer()) {
      code = c->get<int64_t>();
    }
  } else if (error.is_string()) {
    message = error.get<std::string>();
  }
  if (message.empty()) message = absl::StrCat("HTTP ", code);
  if (message.size() > kMaxErrorMessageBytes) {
    // Cut on a character boundary so the message stays valid UTF-8.
    message =
        text::RepairUtf8Chunk({}, message.substr(0, kMaxErrorMessageBytes), false).text + "...";
  }
  const std::string text = absl::StrCat("llama-server: ", message);
  if (type == "exceed_context_size_error") {
    return WithReason(absl::OutOfRangeError(text), "context_length_exceeded");
  }
  if (type == "unavailable_error") return absl::UnavailableError(text);
  if (type == "invalid_request_error") return absl::InvalidArgumentError(text);
  const int status = code >= 100 && code <= 599 ? static_cast<int>(code) : http_status;
  if (status == 401 || status == 403) {
    return absl::InternalError(absl::StrCat(text, " (the worker's llama-server API key)"));
  }
  absl::StatusCode mapped = http::HttpStatusToCode(status);
  if (mapped == absl::StatusCode::kOk) mapped = absl::StatusCode::kInternal;
  return absl::Status(mapped, text);
}

absl::StatusOr<Json> ParseBody(absl::string_view body) {
  absl::optional<Json> parsed = ParseJson(body);
  if (!parsed.has_value()) {
    // JSON must be UTF-8; if llama-server ever sent raw bytes, repair them once rather than
    // failing the whole answer (a character split across two chunks then shows as U+FFFD, the
    // best that can be done with a broken producer).
    if (!text::IsValidUtf8(body)) parsed = ParseJson(text::RepairUtf8(body));
  }
  if (!parsed.has_value()) return Malformed("invalid JSON");
  if (!parsed->is_object()) return Malformed("the JSON is not an object");
  if (const Json* error = Member(*parsed, "error"); error != nullptr) {
    return ErrorObjectToStatus(*error, 500);
  }
  return *std::move(parsed);
}

absl::StatusOr<std::vector<LlamaToolCall>> ParseToolCalls(const Json& calls) {
  if (!calls.is_array()) return Malformed("'tool_calls' is not an array");
  std::vector<LlamaToolCall> out;
  for (const Json& call : calls) {
    if (!call.is_object()) return Malformed("a tool call is not an object");
    LlamaToolCall parsed;
    TIERMESH_ASSIGN_OR_RETURN(parsed.id, StringMember(call, "id"));
    const Json* function = Member(call, "function");
    if (function == nullptr || !function->is_object()) {
      return Malformed("a tool call has no 'function'");
    }
    TIERMESH_ASSIGN_OR_RETURN(parsed.name, StringMember(*function, "name"));
    const Json* arguments = Member(*function, "arguments");
    if (arguments != nullptr) {
      parsed.arguments_json =
          arguments->is_string() ? arguments->get<std::string>() : arguments->dump();
    }
    out.push_back(std::move(parsed));
  }
  return out;
}

absl::StatusOr<LlamaCompletion> ParseChatCompletionImpl(absl::string_view body) {
  TIERMESH_ASSIGN_OR_RETURN(Json json, ParseBody(body));
  LlamaCompletion out;
  TIERMESH_ASSIGN_OR_RETURN(out.model, StringMember(json, "model"));
  const Json* choices = Member(json, "choices");
  if (choices == nullptr || !choices->is_array() || choices->empty()) {
    return Malformed("no 'choices'");
  }
  const Json& choice = (*choices)[0];
  const Json* message = Member(choice, "message");
  if (message == nullptr || !message->is_object()) return Malformed("no 'message' in the choice");
  TIERMESH_ASSIGN_OR_RETURN(out.content, StringMember(*message, "content"));
  TIERMESH_ASSIGN_OR_RETURN(out.reasoning_content, StringMember(*message, "reasoning_content"));
  if (const Json* calls = Member(*message, "tool_calls"); calls != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(out.tool_calls, ParseToolCalls(*calls));
  }
  TIERMESH_ASSIGN_OR_RETURN(std::string finish, StringMember(choice, "finish_reason"));
  out.finish_reason = ParseFinishReason(finish);
  if (const Json* usage = Member(json, "usage"); usage != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(out.usage, ParseUsage(*usage));
  }
  if (const Json* timings = Member(json, "timings"); timings != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(out.timings, ParseTimings(*timings));
  }
  return out;
}

absl::StatusOr<LlamaChunk> ParseChatCompletionChunkImpl(absl::string_view data) {
  TIERMESH_ASSIGN_OR_RETURN(Json json, ParseBody(data));
  LlamaChunk out;
  TIERMESH_ASSIGN_OR_RETURN(out.model, StringMember(json, "model"));
  const Json* choices = Member(json, "choices");
  if (choices != nullptr && !choices->is_array()) return Malformed("'choices' is not an array");
  if (choices != nullptr && !choices->empty()) {
    const Json& choice = (*choices)[0];
    if (!choice.is_object()) return Malformed("a choice is not an object");
    if (const Json* delta = Member(choice, "delta"); delta != nullptr) {
      if (!delta->is_object()) return Malformed("'delta' is not an object");
      TIERMESH_ASSIGN_OR_RETURN(out.content_delta, StringMember(*delta, "content"));
      TIERMESH_ASSIGN_OR_RETURN(out.reasoning_delta, StringMember(*delta, "reasoning_content"));
      if (const Json* calls = Member(*delta, "tool_calls"); calls != nullptr) {
        if (!calls->is_array()) return Malformed("'tool_calls' is not an array");
        for (const Json& call : *calls) {
          if (!call.is_object()) return Malformed("a tool call delta is not an object");
          LlamaToolCallDelta d;
          TIERMESH_ASSIGN_OR_RETURN(int64_t index, IntMember(call, "index"));
          if (index < 0 || index > 1024) return Malformed("tool call index out of range");
          d.index = static_cast<int32_t>(index);
          TIERMESH_ASSIGN_OR_RETURN(d.id, StringMember(call, "id"));
          if (const Json* function = Member(call, "function"); function != nullptr) {
            if (!function->is_object()) return Malformed("'function' is not an object");
            TIERMESH_ASSIGN_OR_RETURN(d.name, StringMember(*function, "name"));
            TIERMESH_ASSIGN_OR_RETURN(d.arguments_delta, StringMember(*function, "arguments"));
          }
          out.tool_call_deltas.push_back(std::move(d));
        }
      }
    }
    if (const Json* finish = Member(choice, "finish_reason"); finish != nullptr) {
      if (!finish->is_string()) return Malformed("'finish_reason' is not a string");
      out.finish_reason = ParseFinishReason(finish->get<std::string>());
    }
  }
  if (const Json* usage = Member(json, "usage"); usage != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(out.usage, ParseUsage(*usage));
  }
  if (const Json* timings = Member(json, "timings"); timings != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(out.timings, ParseTimings(*timings));
  }
  return out;
}

}  // namespace

absl::Status ValidateGenerateRequest(const GenerateRequest& request) {
  if (request.messages_size() == 0) return Invalid("messages must not be empty");
  for (int i = 0; i < request.messages_size(); ++i) {
    TIERMESH_RETURN_IF_ERROR(ValidateMessage(request.messages(i), i));
  }
  TIERMESH_RETURN_IF_ERROR(ValidateTools(request));
  return ValidateParams(request.params());
}

absl::StatusOr<std::string> BuildChatCompletionBody(const GenerateRequest& request, bool stream) {
  TIERMESH_RETURN_IF_ERROR(ValidateGenerateRequest(request));
  OrderedJson body = OrderedJson::object();
  if (!request.model().empty()) body["model"] = request.model();
  OrderedJson messages = OrderedJson::array();
  for (const ChatMessage& m : request.messages()) messages.push_back(MessageJson(m));
  body["messages"] = std::move(messages);

  const ToolChoice& choice = request.tool_choice();
  if (request.tools_size() > 0) {
    OrderedJson tools = OrderedJson::array();
    for (const tiermesh::v1::Tool& tool : request.tools()) {
      if (choice.mode() == ToolChoice::MODE_FUNCTION && tool.name() != choice.function_name()) {
        continue;
      }
      tools.push_back(ToolJson(tool));
    }
    body["tools"] = std::move(tools);
    switch (choice.mode()) {
      case ToolChoice::MODE_NONE:
        body["tool_choice"] = "none";
        break;
      case ToolChoice::MODE_REQUIRED:
      case ToolChoice::MODE_FUNCTION:
        body["tool_choice"] = "required";
        break;
      default:
        body["tool_choice"] = "auto";
        break;
    }
  }

  const GenerationParams& p = request.params();
  if (p.has_max_tokens()) body["max_tokens"] = p.max_tokens();
  if (p.has_temperature()) body["temperature"] = p.temperature();
  if (p.has_top_p()) body["top_p"] = p.top_p();
  if (p.has_top_k()) body["top_k"] = p.top_k();
  if (p.stop_size() > 0) {
    body["stop"] = OrderedJson(std::vector<std::string>(p.stop().begin(), p.stop().end()));
  }
  if (p.has_seed()) body["seed"] = p.seed();
  if (p.has_presence_penalty()) body["presence_penalty"] = p.presence_penalty();
  if (p.has_frequency_penalty()) body["frequency_penalty"] = p.frequency_penalty();
  if (p.json_mode()) body["response_format"] = OrderedJson{{"type", "json_object"}};
  body["stream"] = stream;
  if (stream) body["stream_options"] = OrderedJson{{"include_usage", true}};
  try {
    return body.dump();
  } catch (const std::exception& e) {
    // Only invalid UTF-8 makes dump() throw, and validation rules that out; keep the guard so a
    // future field cannot crash the worker.
    return absl::InternalError(absl::StrCat("could not encode the request: ", e.what()));
  }
}

tiermesh::v1::FinishReason ParseFinishReason(absl::string_view reason) {
  if (reason == "stop") return tiermesh::v1::FINISH_REASON_STOP;
  if (reason == "length") return tiermesh::v1::FINISH_REASON_LENGTH;
  if (reason == "tool_calls" || reason == "function_call") {
    return tiermesh::v1::FINISH_REASON_TOOL_CALLS;
  }
  if (reason == "content_filter") return tiermesh::v1::FINISH_REASON_CONTENT_FILTER;
  return tiermesh::v1::FINISH_REASON_UNSPECIFIED;
}

absl::StatusOr<LlamaCompletion> ParseChatCompletion(absl::string_view body) {
  try {
    return ParseChatCompletionImpl(body);
  } catch (const std::exception& e) {
    return Malformed(e.what());
  }
}

absl::StatusOr<LlamaChunk> ParseChatCompletionChunk(absl::string_view data) {
  try {
    return ParseChatCompletionChunkImpl(data);
  } catch (const std::exception& e) {
    return Malformed(e.what());
  }
}

absl::Status LlamaErrorToStatus(int http_status, absl::string_view body) {
  try {
    absl::optional<Json> parsed = ParseJson(body);
    if (parsed.has_value()) {
      if (const Json* error = Member(*parsed, "error"); error != nullptr) {
        return ErrorObjectToStatus(*error, http_status);
      }
    }
    // Not llama-server's error shape (a proxy's page, plain text): the HTTP status decides and
    // a short, repaired excerpt of the body explains.
    return ErrorObjectToStatus(Json(text::RepairUtf8(body)), http_status);
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("llama-server: HTTP ", http_status, " (", e.what(), ")"));
  }
}

}  // namespace tiermesh::worker
