#include "services/cloud_proxy/providers/gemini.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
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

ReportedUsage ReadUsage(const Json& usage) {
  ReportedUsage out;
  absl::optional<int64_t> p = IntField(usage, "promptTokenCount");
  absl::optional<int64_t> tool = IntField(usage, "toolUsePromptTokenCount");
  absl::optional<int64_t> c = IntField(usage, "candidatesTokenCount");
  absl::optional<int64_t> thoughts = IntField(usage, "thoughtsTokenCount");
  if (p) out.prompt = *p + tool.value_or(0);
  // A chunk before any output may omit candidatesTokenCount (0 so far).
  if (c || thoughts || p) out.completion = c.value_or(0) + thoughts.value_or(0);
  out.cached = IntField(usage, "cachedContentTokenCount");
  return out;
}

std::string CallId(const Json& call, int ordinal) {
  std::string id = StringOr(call, "id");
  return id.empty() ? absl::StrCat("call_", ordinal) : id;
}

std::string ArgsText(const Json& call) {
  const Json* args = Field(call, "args");
  if (args == nullptr || args->is_null()) return "{}";
  return DumpJson(*args);
}

absl::Status BlockedPrompt(absl::string_view provider, const Json& root) {
  const Json* feedback = Field(root, "promptFeedback");
  const std::string reason = feedback ? StringOr(*feedback, "blockReason") : "";
  if (reason.empty()) return absl::OkStatus();
  return WithReason(absl::FailedPreconditionError(
                        absl::StrCat(provider, ": the provider blocked the prompt (", reason, ")")),
                    kReasonContentPolicy);
}

class GeminiStreamParser final : public StreamParser {
 public:
  GeminiStreamParser(const ProviderConfig& config, const ParseContext& context)
      : StreamParser(config.name, context) {}

 protected:
  absl::Status HandleEvent(const tiermesh::http::SseEvent& event, StreamUpdate* out) override {
    absl::StatusOr<Json> parsed = ParseEventData(event.data);
    if (!parsed.ok()) return parsed.status();
    const Json& chunk = *parsed;
    if (Field(chunk, "error") != nullptr) {
      return MapProviderError(ProviderKind::kGemini, provider(), 200,
                              ParseProviderError(event.data), {}, context().now);
    }
    if (std::string model = StringOr(chunk, "modelVersion"); !model.empty()) SetModel(model);
    SetProviderUsage(internal::ReadUsageField(chunk, "usageMetadata", ReadUsage), out);
    const Json* candidates = Field(chunk, "candidates");
    if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
      return BlockedPrompt(provider(), chunk);
    }
    const Json& candidate = (*candidates)[0];
    if (const Json* content = Field(candidate, "content")) {
      if (const Json* parts = Field(*content, "parts"); parts != nullptr && !parts->is_null()) {
        if (!parts->is_array()) return internal::MalformedError(provider(), "parts is not a list");
        for (const Json& part : *parts) {
          if (const Json* thought = Field(part, "thought");
              thought && thought->is_boolean() && thought->get<bool>()) {
            continue;
          }
          if (const Json* text = Field(part, "text"); text && text->is_string()) {
            EmitText(text->get<std::string>(), out);
          }
          if (const Json* call = Field(part, "functionCall"); call && call->is_object()) {
            const std::string name = StringOr(*call, "name");
            if (name.empty())
              return internal::MalformedError(provider(), "functionCall without name");
            const int ordinal = next_call_++;
            EmitToolCall(ordinal, CallId(*call, ordinal), name, ArgsText(*call), out);
          }
        }
      }
    }
    if (std::string reason = StringOr(candidate, "finishReason"); !reason.empty()) {
      SetFinishReason(GeminiFinishReason(reason, next_call_ > 0), reason, out);
      finish_seen_ = true;
    }
    return absl::OkStatus();
  }

  absl::Status HandleEnd(StreamUpdate* out) override {
    if (!finish_seen_) return absl::OkStatus();  // the base reports the cut
    return MarkComplete(out);
  }

 private:
  int next_call_ = 0;
  bool finish_seen_ = false;
};

class GeminiAdapter final : public ProviderAdapter {
 public:
  explicit GeminiAdapter(ProviderConfig config) : config_(std::move(config)) {}

  ProviderKind kind() const override { return ProviderKind::kGemini; }
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
    absl::flat_hash_map<std::string, std::string> call_names;  // id -> name, latest wins
    std::vector<std::pair<std::string, Json>> turns;           // role, parts
    for (int i = 0; i < request.messages_size(); ++i) {
      const ChatMessage& m = request.messages(i);
      const std::string where = absl::StrCat("messages[", i, "]");
      Json parts = Json::array();
      std::string role;
      switch (m.role()) {
        case tiermesh::v1::ROLE_SYSTEM:
          continue;
        case tiermesh::v1::ROLE_USER:
          role = "user";
          if (!m.content().empty()) parts.push_back({{"text", m.content()}});
          break;
        case tiermesh::v1::ROLE_ASSISTANT:
          role = "model";
          if (!m.content().empty()) parts.push_back({{"text", m.content()}});
          for (int j = 0; j < m.tool_calls_size(); ++j) {
            const auto& call = m.tool_calls(j);
            auto args = internal::ParseArgumentsObject(call.arguments_json(),
                                                       absl::StrCat(where, ".tool_calls[", j, "]"));
            if (!args.ok()) return args.status();
            parts.push_back(
                {{"functionCall", {{"name", call.name()}, {"args", *std::move(args)}}}});
            call_names[call.id()] = call.name();
          }
          break;
        case tiermesh::v1::ROLE_TOOL: {
          role = "user";
          auto name = call_names.find(m.tool_call_id());
          if (name == call_names.end()) {
            return absl::InvalidArgumentError(absl::StrCat(
                where, ": tool_call_id \"", m.tool_call_id(), "\" answers no earlier call"));
          }
          Json response = Json::parse(m.content(), nullptr, /*allow_exceptions=*/false);
          if (response.is_discarded() || !response.is_object()) {
            response = {{"content", m.content()}};
          }
          parts.push_back(
              {{"functionResponse", {{"name", name->second}, {"response", std::move(response)}}}});
          break;
        }
        default:
          return absl::InvalidArgumentError(absl::StrCat(where, ": bad role"));
      }
      if (parts.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": empty message (Gemini rejects empty parts)"));
      }
      if (!turns.empty() && turns.back().first == role) {
        for (Json& part : parts) turns.back().second.push_back(std::move(part));
      } else {
        turns.emplace_back(role, std::move(parts));
      }
    }
    if (turns.empty()) {
      return absl::InvalidArgumentError("messages: Gemini needs at least one non-system message");
    }
    Json contents = Json::array();
    for (auto& [role, parts] : turns) {
      contents.push_back({{"role", role}, {"parts", std::move(parts)}});
    }
    body["contents"] = std::move(contents);
    const std::string system = internal::JoinSystemPrompts(request);
    if (!system.empty()) {
      body["systemInstruction"] = Json{{"parts", Json::array({Json{{"text", system}}})}};
    }

    if (request.tools_size() > 0) {
      Json declarations = Json::array();
      for (int i = 0; i < request.tools_size(); ++i) {
        const auto& tool = request.tools(i);
        auto schema = internal::ParseToolSchema(tool, absl::StrCat("tools[", i, "]"));
        if (!schema.ok()) return schema.status();
        Json d = {{"name", tool.name()}};
        if (!tool.description().empty()) d["description"] = tool.description();
        if (schema->has_value()) d["parameters"] = **schema;
        declarations.push_back(std::move(d));
      }
      body["tools"] = Json::array({{{"functionDeclarations", std::move(declarations)}}});
      Json calling;
      switch (request.tool_choice().mode()) {
        case ToolChoice::MODE_AUTO:
          calling = {{"mode", "AUTO"}};
          break;
        case ToolChoice::MODE_NONE:
          calling = {{"mode", "NONE"}};
          break;
        case ToolChoice::MODE_REQUIRED:
          calling = {{"mode", "ANY"}};
          break;
        case ToolChoice::MODE_FUNCTION:
          calling = {
              {"mode", "ANY"},
              {"allowedFunctionNames", Json::array({request.tool_choice().function_name()})}};
          break;
        default:
          break;
      }
      if (!calling.is_null()) body["toolConfig"] = {{"functionCallingConfig", std::move(calling)}};
    }

    const auto& p = request.params();
    Json gen = Json::object();
    if (int64_t max = internal::EffectiveMaxTokens(request, model, 0); max > 0) {
      gen["maxOutputTokens"] = max;
    }
    if (p.has_temperature()) gen["temperature"] = FloatToJsonNumber(p.temperature());
    if (p.has_top_p()) gen["topP"] = FloatToJsonNumber(p.top_p());
    if (p.has_top_k() && p.top_k() > 0) gen["topK"] = p.top_k();
    if (p.stop_size() > 0) {
      gen["stopSequences"] = Json(std::vector<std::string>(p.stop().begin(), p.stop().end()));
    }
    if (p.has_seed()) gen["seed"] = p.seed();
    if (p.has_presence_penalty()) gen["presencePenalty"] = FloatToJsonNumber(p.presence_penalty());
    if (p.has_frequency_penalty()) {
      gen["frequencyPenalty"] = FloatToJsonNumber(p.frequency_penalty());
    }
    if (p.json_mode()) gen["responseMimeType"] = "application/json";
    if (!gen.empty()) body["generationConfig"] = std::move(gen);

    HttpRequestSpec spec;
    spec.path = absl::StrCat("/v1beta/models/", model.upstream,
                             stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    spec.headers = {{"Content-Type", "application/json"},
                    {"Accept", stream ? "text/event-stream" : "application/json"}};
    spec.headers.insert(spec.headers.end(), config_.headers.begin(), config_.headers.end());
    spec.body = DumpJson(body);
    return spec;
  }

  std::pair<std::string, std::string> AuthHeader(absl::string_view key) const override {
    return {"x-goog-api-key", std::string(key)};
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
    const Json* candidates = Field(root, "candidates");
    if (candidates == nullptr || !candidates->is_array() || candidates->empty()) {
      TIERMESH_RETURN_IF_ERROR(BlockedPrompt(config_.name, root));
      return internal::MalformedError(config_.name, "no candidates in the response");
    }
    const Json& candidate = (*candidates)[0];
    GenerateResponse out;
    ChatMessage* msg = out.mutable_message();
    msg->set_role(tiermesh::v1::ROLE_ASSISTANT);
    std::string text;
    if (const Json* content = Field(candidate, "content")) {
      if (const Json* parts = Field(*content, "parts"); parts && parts->is_array()) {
        for (const Json& part : *parts) {
          if (const Json* thought = Field(part, "thought");
              thought && thought->is_boolean() && thought->get<bool>()) {
            continue;
          }
          text += StringOr(part, "text");
          if (const Json* call = Field(part, "functionCall"); call && call->is_object()) {
            tiermesh::v1::ToolCall* tc = msg->add_tool_calls();
            tc->set_id(text::RepairUtf8(CallId(*call, msg->tool_calls_size() - 1)));
            tc->set_name(text::RepairUtf8(StringOr(*call, "name")));
            tc->set_arguments_json(text::RepairUtf8(ArgsText(*call)));
          }
        }
      }
    }
    msg->set_content(text::RepairUtf8(text));
    const std::string reason = StringOr(candidate, "finishReason");
    out.set_finish_reason(GeminiFinishReason(reason, msg->tool_calls_size() > 0));
    out.set_model(StringOr(root, "modelVersion"));
    TIERMESH_RETURN_IF_ERROR(internal::FinishUnaryResponse(
        config_.name, internal::ReadUsageField(root, "usageMetadata", ReadUsage), reason, context,
        &out));
    return out;
  }

  std::unique_ptr<StreamParser> NewStreamParser(const ParseContext& context) const override {
    return std::make_unique<GeminiStreamParser>(config_, context);
  }

 private:
  ProviderConfig config_;
};

}  // namespace

tiermesh::v1::FinishReason GeminiFinishReason(absl::string_view reason, bool calls_functions) {
  if (reason == "STOP") {
    return calls_functions ? tiermesh::v1::FINISH_REASON_TOOL_CALLS
                           : tiermesh::v1::FINISH_REASON_STOP;
  }
  if (reason == "MAX_TOKENS") return tiermesh::v1::FINISH_REASON_LENGTH;
  for (absl::string_view filtered :
       {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}) {
    if (reason == filtered) return tiermesh::v1::FINISH_REASON_CONTENT_FILTER;
  }
  for (absl::string_view abnormal :
       {"LANGUAGE", "OTHER", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL",
        "TOO_MANY_TOOL_CALLS", "IMAGE_OTHER", "NO_IMAGE"}) {
    if (reason == abnormal) return tiermesh::v1::FINISH_REASON_ERROR;
  }
  return tiermesh::v1::FINISH_REASON_UNSPECIFIED;
}

std::unique_ptr<ProviderAdapter> NewGeminiAdapter(ProviderConfig config) {
  return std::make_unique<GeminiAdapter>(std::move(config));
}

}  // namespace tiermesh::cloud
