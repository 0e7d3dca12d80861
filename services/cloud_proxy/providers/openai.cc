#include "services/cloud_proxy/providers/openai.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/cloud_proxy/errors.h"
#include "services/cloud_proxy/json_util.h"
#include "services/cloud_proxy/providers/adapter_util.h"
#include "services/common/status/status.h"

namespace tiermesh::cloud {
namespace {

using tiermesh::v1::ChatMessage;
using tiermesh::v1::GenerateRequest;
using tiermesh::v1::GenerateResponse;
using tiermesh::v1::ToolChoice;

// Some compatible servers return content as [{type:"text", text:...}].
std::string ContentText(const Json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (content.is_array()) {
    for (const Json& part : content) out += StringOr(part, "text");
  }
  return out;
}

// Arguments are a JSON text; a few servers send the object itself.
std::string ArgumentsText(const Json& function) {
  const Json* args = Field(function, "arguments");
  if (args == nullptr || args->is_null()) return "";
  if (args->is_string()) return args->get<std::string>();
  return DumpJson(*args);
}

ReportedUsage ReadUsage(const Json& usage) {
  ReportedUsage out;
  out.prompt = IntField(usage, "prompt_tokens");
  out.completion = IntField(usage, "completion_tokens");
  if (const Json* details = Field(usage, "prompt_tokens_details")) {
    out.cached = IntField(*details, "cached_tokens");
  }
  return out;
}

class OpenAiStreamParser final : public StreamParser {
 public:
  OpenAiStreamParser(const ProviderConfig& config, const ParseContext& context)
      : StreamParser(config.name, context) {}

 protected:
  absl::Status HandleEvent(const tiermesh::http::SseEvent& event, StreamUpdate* out) override {
    if (event.data == "[DONE]") return MarkComplete(out);
    absl::StatusOr<Json> parsed = ParseEventData(event.data);
    if (!parsed.ok()) return parsed.status();
    const Json& chunk = *parsed;
    if (Field(chunk, "error") != nullptr || event.event == "error") {
      return MapProviderError(ProviderKind::kOpenAiCompatible, provider(), 200,
                              ParseProviderError(event.data), {}, context().now);
    }
    if (std::string model = StringOr(chunk, "model"); !model.empty()) SetModel(std::move(model));
    if (const Json* choices = Field(chunk, "choices"); choices != nullptr && !choices->is_null()) {
      if (!choices->is_array())
        return internal::MalformedError(provider(), "choices is not a list");
      for (const Json& choice : *choices) {
        if (IntField(choice, "index").value_or(0) != 0) continue;  // n = 1 is always asked
        TIERMESH_RETURN_IF_ERROR(HandleChoice(choice, out));
      }
    }
    SetProviderUsage(internal::ReadUsageField(chunk, "usage", ReadUsage), out);
    return absl::OkStatus();
  }

 private:
  absl::Status HandleChoice(const Json& choice, StreamUpdate* out) {
    if (const Json* delta = Field(choice, "delta"); delta != nullptr && delta->is_object()) {
      if (const Json* content = Field(*delta, "content")) EmitText(ContentText(*content), out);
      if (const Json* calls = Field(*delta, "tool_calls"); calls != nullptr && !calls->is_null()) {
        if (!calls->is_array())
          return internal::MalformedError(provider(), "tool_calls is not a list");
        int position = 0;
        for (const Json& call : *calls) {
          const int64_t index = IntField(call, "index").value_or(position);
          ++position;
          if (index > 1024)
            return internal::MalformedError(provider(), "tool call index too large");
          const Json* function = Field(call, "function");
          const Json empty = Json::object();
          const Json& fn = function != nullptr ? *function : empty;
          EmitToolCall(static_cast<int>(index), StringOr(call, "id"), StringOr(fn, "name"),
                       ArgumentsText(fn), out);
        }
      }
    }
    if (const Json* reason = Field(choice, "finish_reason");
        reason != nullptr && reason->is_string()) {
      const std::string text = reason->get<std::string>();
      SetFinishReason(OpenAiFinishReason(text), text, out);
    }
    return absl::OkStatus();
  }
};

class OpenAiAdapter final : public ProviderAdapter {
 public:
  explicit OpenAiAdapter(ProviderConfig config) : config_(std::move(config)) {}

  ProviderKind kind() const override { return ProviderKind::kOpenAiCompatible; }
  const ProviderConfig& config() const override { return config_; }

  absl::StatusOr<HttpRequestSpec> BuildRequest(const GenerateRequest& request,
                                               const ModelConfig& model,
                                               bool stream) const override {
    TIERMESH_RETURN_IF_ERROR(ValidateGenerateRequest(request));
    if (request.tools_size() > 0 && !model.supports_tools) {
      return absl::InvalidArgumentError(
          absl::StrCat("model ", model.name, " does not support tools"));
    }
    Json body = Json::object();
    body["model"] = model.upstream;
    Json messages = Json::array();
    for (int i = 0; i < request.messages_size(); ++i) {
      const ChatMessage& m = request.messages(i);
      Json msg = Json::object();
      switch (m.role()) {
        case tiermesh::v1::ROLE_SYSTEM:
          msg["role"] = "system";
          msg["content"] = m.content();
          break;
        case tiermesh::v1::ROLE_USER:
          msg["role"] = "user";
          msg["content"] = m.content();
          break;
        case tiermesh::v1::ROLE_ASSISTANT: {
          msg["role"] = "assistant";
          // OpenAI wants null content next to tool calls when there is no text.
          if (m.content().empty() && m.tool_calls_size() > 0) {
            msg["content"] = nullptr;
          } else {
            msg["content"] = m.content();
          }
          if (m.tool_calls_size() > 0) {
            Json calls = Json::array();
            for (const auto& call : m.tool_calls()) {
              calls.push_back({{"id", call.id()},
                               {"type", "function"},
                               {"function",
                                {{"name", call.name()},
                                 {"arguments",
                                  call.arguments_json().empty() ? "{}" : call.arguments_json()}}}});
            }
            msg["tool_calls"] = std::move(calls);
          }
          break;
        }
        case tiermesh::v1::ROLE_TOOL:
          msg["role"] = "tool";
          msg["tool_call_id"] = m.tool_call_id();
          msg["content"] = m.content();
          break;
        default:
          return absl::InvalidArgumentError(absl::StrCat("messages[", i, "]: bad role"));
      }
      if (!m.name().empty() && m.role() != tiermesh::v1::ROLE_TOOL) msg["name"] = m.name();
      messages.push_back(std::move(msg));
    }
    body["messages"] = std::move(messages);

    if (request.tools_size() > 0) {
      Json tools = Json::array();
      for (int i = 0; i < request.tools_size(); ++i) {
        const auto& tool = request.tools(i);
        auto schema = internal::ParseToolSchema(tool, absl::StrCat("tools[", i, "]"));
        if (!schema.ok()) return schema.status();
        Json fn = {{"name", tool.name()}};
        if (!tool.description().empty()) fn["description"] = tool.description();
        fn["parameters"] = schema->has_value()
                               ? **schema
                               : Json{{"type", "object"}, {"properties", Json::object()}};
        tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
      }
      body["tools"] = std::move(tools);
      switch (request.tool_choice().mode()) {
        case ToolChoice::MODE_AUTO:
          body["tool_choice"] = "auto";
          break;
        case ToolChoice::MODE_NONE:
          body["tool_choice"] = "none";
          break;
        case ToolChoice::MODE_REQUIRED:
          body["tool_choice"] = "required";
          break;
        case ToolChoice::MODE_FUNCTION:
          body["tool_choice"] = {{"type", "function"},
                                 {"function", {{"name", request.tool_choice().function_name()}}}};
          break;
        default:
          break;
      }
    }

    const auto& p = request.params();
    if (p.has_max_tokens()) body[model.max_tokens_field] = p.max_tokens();
    if (p.has_temperature()) body["temperature"] = FloatToJsonNumber(p.temperature());
    if (p.has_top_p()) body["top_p"] = FloatToJsonNumber(p.top_p());
    if (p.has_top_k() && p.top_k() > 0 && model.supports_top_k) body["top_k"] = p.top_k();
    if (p.stop_size() > 0) {
      body["stop"] = Json(std::vector<std::string>(p.stop().begin(), p.stop().end()));
    }
    if (p.has_seed()) body["seed"] = p.seed();
    if (p.has_presence_penalty())
      body["presence_penalty"] = FloatToJsonNumber(p.presence_penalty());
    if (p.has_frequency_penalty()) {
      body["frequency_penalty"] = FloatToJsonNumber(p.frequency_penalty());
    }
    if (p.json_mode()) body["response_format"] = {{"type", "json_object"}};
    if (stream) {
      body["stream"] = true;
      if (config_.stream_include_usage) body["stream_options"] = {{"include_usage", true}};
    }

    HttpRequestSpec spec;
    spec.path = "/chat/completions";
    spec.headers = {{"Content-Type", "application/json"},
                    {"Accept", stream ? "text/event-stream" : "application/json"}};
    spec.headers.insert(spec.headers.end(), config_.headers.begin(), config_.headers.end());
    spec.body = DumpJson(body);
    return spec;
  }

  std::pair<std::string, std::string> AuthHeader(absl::string_view key) const override {
    return {"Authorization", absl::StrCat("Bearer ", key)};
  }

  absl::StatusOr<GenerateResponse> ParseResponse(const HttpResponse& response,
                                                 const ParseContext& context) const override {
    if (response.status < 200 || response.status >= 300) return MapError(response, context.now);
    absl::StatusOr<Json> parsed = ParseJson(response.body, "response body");
    if (!parsed.ok()) return internal::MalformedError(config_.name, parsed.status().message());
    const Json& root = *parsed;
    if (Field(root, "error") != nullptr) {
      return MapProviderError(kind(), config_.name, 200, ParseProviderError(response.body),
                              response.headers, context.now);
    }
    const Json* choices = Field(root, "choices");
    if (choices == nullptr || !choices->is_array() || choices->empty()) {
      return internal::MalformedError(config_.name, "no choices in the response");
    }
    const Json& choice = (*choices)[0];
    const Json* message = Field(choice, "message");
    if (message == nullptr || !message->is_object()) {
      return internal::MalformedError(config_.name, "choices[0] has no message");
    }
    GenerateResponse out;
    ChatMessage* msg = out.mutable_message();
    msg->set_role(tiermesh::v1::ROLE_ASSISTANT);
    if (const Json* content = Field(*message, "content")) {
      msg->set_content(text::RepairUtf8(ContentText(*content)));
    }
    if (const Json* calls = Field(*message, "tool_calls"); calls != nullptr && !calls->is_null()) {
      if (!calls->is_array())
        return internal::MalformedError(config_.name, "tool_calls is not a list");
      for (const Json& call : *calls) {
        const Json* function = Field(call, "function");
        if (function == nullptr || !function->is_object()) {
          return internal::MalformedError(config_.name, "a tool call has no function");
        }
        tiermesh::v1::ToolCall* tc = msg->add_tool_calls();
        tc->set_id(text::RepairUtf8(StringOr(call, "id")));
        tc->set_name(text::RepairUtf8(StringOr(*function, "name")));
        tc->set_arguments_json(text::RepairUtf8(ArgumentsText(*function)));
      }
    }
    const std::string reason = StringOr(choice, "finish_reason");
    out.set_finish_reason(OpenAiFinishReason(reason));
    out.set_model(StringOr(root, "model"));
    TIERMESH_RETURN_IF_ERROR(internal::FinishUnaryResponse(
        config_.name, internal::ReadUsageField(root, "usage", ReadUsage), reason, context, &out));
    return out;
  }

  std::unique_ptr<StreamParser> NewStreamParser(const ParseContext& context) const override {
    return std::make_unique<OpenAiStreamParser>(config_, context);
  }

 private:
  ProviderConfig config_;
};

}  // namespace

tiermesh::v1::FinishReason OpenAiFinishReason(absl::string_view reason) {
  if (reason == "stop") return tiermesh::v1::FINISH_REASON_STOP;
  if (reason == "length") return tiermesh::v1::FINISH_REASON_LENGTH;
  if (reason == "tool_calls" || reason == "function_call") {
    return tiermesh::v1::FINISH_REASON_TOOL_CALLS;
  }
  if (reason == "content_filter") return tiermesh::v1::FINISH_REASON_CONTENT_FILTER;
  if (reason == "error") return tiermesh::v1::FINISH_REASON_ERROR;  // OpenRouter
  return tiermesh::v1::FINISH_REASON_UNSPECIFIED;
}

std::unique_ptr<ProviderAdapter> NewOpenAiAdapter(ProviderConfig config) {
  return std::make_unique<OpenAiAdapter>(std::move(config));
}

}  // namespace tiermesh::cloud
