#include "services/cloud_proxy/providers/anthropic.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

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

// Anthropic reports fresh input, cache reads and cache writes apart; the
// tiermesh prompt count is their sum.
ReportedUsage ReadUsage(const Json& usage) {
  ReportedUsage out;
  absl::optional<int64_t> input = IntField(usage, "input_tokens");
  absl::optional<int64_t> read = IntField(usage, "cache_read_input_tokens");
  absl::optional<int64_t> write = IntField(usage, "cache_creation_input_tokens");
  if (input) out.prompt = *input + read.value_or(0) + write.value_or(0);
  if (read) out.cached = *read;
  out.completion = IntField(usage, "output_tokens");
  return out;
}

class AnthropicStreamParser final : public StreamParser {
 public:
  AnthropicStreamParser(const ProviderConfig& config, const ParseContext& context)
      : StreamParser(config.name, context) {}

 protected:
  absl::Status HandleEvent(const tiermesh::http::SseEvent& event, StreamUpdate* out) override {
    absl::StatusOr<Json> parsed = ParseEventData(event.data);
    if (!parsed.ok()) return parsed.status();
    const Json& data = *parsed;
    std::string type = StringOr(data, "type");
    if (type.empty()) type = event.event;

    if (type == "error") {
      return MapProviderError(ProviderKind::kAnthropic, provider(), 200,
                              ParseProviderError(event.data), {}, context().now);
    }
    if (type == "ping") return absl::OkStatus();
    if (type == "message_start") {
      const Json* message = Field(data, "message");
      if (message == nullptr || !message->is_object()) {
        return internal::MalformedError(provider(), "message_start without message");
      }
      if (std::string model = StringOr(*message, "model"); !model.empty()) SetModel(model);
      SetProviderUsage(internal::ReadUsageField(*message, "usage", ReadUsage), out);
      return absl::OkStatus();
    }
    if (type == "content_block_start") return BlockStart(data, out);
    if (type == "content_block_delta") return BlockDelta(data, out);
    if (type == "content_block_stop") {
      absl::optional<int64_t> index = IntField(data, "index");
      if (!index || blocks_.count(*index) == 0) {
        return internal::MalformedError(provider(), "content_block_stop for an unknown block");
      }
      return absl::OkStatus();
    }
    if (type == "message_delta") {
      if (const Json* delta = Field(data, "delta")) {
        if (const Json* reason = Field(*delta, "stop_reason"); reason && reason->is_string()) {
          const std::string text = reason->get<std::string>();
          SetFinishReason(AnthropicFinishReason(text), text, out);
        }
      }
      SetProviderUsage(internal::ReadUsageField(data, "usage", ReadUsage), out);
      return absl::OkStatus();
    }
    if (type == "message_stop") return MarkComplete(out);
    return absl::OkStatus();  // new event types are skipped, as the API docs ask
  }

 private:
  struct Block {
    enum class Kind { kText, kTool, kOther };
    Kind kind = Kind::kOther;
    int tool_index = -1;
  };

  absl::Status BlockStart(const Json& data, StreamUpdate* out) {
    absl::optional<int64_t> index = IntField(data, "index");
    const Json* block = Field(data, "content_block");
    if (!index || block == nullptr || !block->is_object()) {
      return internal::MalformedError(provider(), "content_block_start without index or block");
    }
    if (blocks_.count(*index) != 0) {
      return internal::MalformedError(provider(), "content_block_start repeated for one index");
    }
    Block& b = blocks_[*index];
    const std::string type = StringOr(*block, "type");
    if (type == "text") {
      b.kind = Block::Kind::kText;
      EmitText(StringOr(*block, "text"), out);
    } else if (type == "tool_use") {
      b.kind = Block::Kind::kTool;
      b.tool_index = next_tool_index_++;
      const std::string id = StringOr(*block, "id");
      const std::string name = StringOr(*block, "name");
      if (name.empty()) return internal::MalformedError(provider(), "tool_use block without name");
      std::string initial;
      if (const Json* input = Field(*block, "input");
          input && input->is_object() && !input->empty()) {
        initial = DumpJson(*input);
      }
      EmitToolCall(b.tool_index, id, name, initial, out);
    }
    return absl::OkStatus();
  }

  absl::Status BlockDelta(const Json& data, StreamUpdate* out) {
    absl::optional<int64_t> index = IntField(data, "index");
    const Json* delta = Field(data, "delta");
    if (!index || delta == nullptr || !delta->is_object()) {
      return internal::MalformedError(provider(), "content_block_delta without index or delta");
    }
    auto it = blocks_.find(*index);
    if (it == blocks_.end()) {
      return internal::MalformedError(provider(), "content_block_delta for an unknown block");
    }
    const std::string type = StringOr(*delta, "type");
    if (type == "text_delta") {
      if (it->second.kind != Block::Kind::kText) {
        return internal::MalformedError(provider(), "text_delta on a non-text block");
      }
      EmitText(StringOr(*delta, "text"), out);
    } else if (type == "input_json_delta") {
      if (it->second.kind != Block::Kind::kTool) {
        return internal::MalformedError(provider(), "input_json_delta on a non-tool block");
      }
      EmitToolCall(it->second.tool_index, "", "", StringOr(*delta, "partial_json"), out);
    }
    return absl::OkStatus();
  }

  std::map<int64_t, Block> blocks_;
  int next_tool_index_ = 0;
};

class AnthropicAdapter final : public ProviderAdapter {
 public:
  explicit AnthropicAdapter(ProviderConfig config) : config_(std::move(config)) {}

  ProviderKind kind() const override { return ProviderKind::kAnthropic; }
  const ProviderConfig& config() const override { return config_; }

  absl::StatusOr<HttpRequestSpec> BuildRequest(const GenerateRequest& request,
                                               const ModelConfig& model,
                                               bool stream) const override {
    TIERMESH_RETURN_IF_ERROR(ValidateGenerateRequest(request));
    if (request.tools_size() > 0 && !model.supports_tools) {
      return absl::InvalidArgumentError(
          absl::StrCat("model ", model.name, " does not support tools"));
    }
    const auto& p = request.params();
    if (p.json_mode()) {
      return absl::InvalidArgumentError(
          "params.json_mode: the Anthropic Messages API has no JSON mode");
    }
    if (p.has_temperature() && p.temperature() > 1.0f) {
      return absl::InvalidArgumentError(
          "params.temperature: the Anthropic Messages API accepts 0..1");
    }
    if ((p.has_presence_penalty() && p.presence_penalty() != 0.0f) ||
        (p.has_frequency_penalty() && p.frequency_penalty() != 0.0f)) {
      return absl::InvalidArgumentError(
          "params: the Anthropic Messages API has no presence/frequency penalties");
    }

    Json body = Json::object();
    body["model"] = model.upstream;
    body["max_tokens"] = internal::EffectiveMaxTokens(request, model, kAnthropicDefaultMaxTokens);
    const std::string system = internal::JoinSystemPrompts(request);
    if (!system.empty()) body["system"] = system;

    std::vector<std::pair<std::string, Json>> turns;  // role, content blocks
    for (int i = 0; i < request.messages_size(); ++i) {
      const ChatMessage& m = request.messages(i);
      const std::string where = absl::StrCat("messages[", i, "]");
      Json blocks = Json::array();
      std::string role;
      switch (m.role()) {
        case tiermesh::v1::ROLE_SYSTEM:
          continue;
        case tiermesh::v1::ROLE_USER:
          role = "user";
          if (!m.content().empty()) blocks.push_back({{"type", "text"}, {"text", m.content()}});
          break;
        case tiermesh::v1::ROLE_ASSISTANT:
          role = "assistant";
          if (!m.content().empty()) blocks.push_back({{"type", "text"}, {"text", m.content()}});
          for (int j = 0; j < m.tool_calls_size(); ++j) {
            const auto& call = m.tool_calls(j);
            auto input = internal::ParseArgumentsObject(
                call.arguments_json(), absl::StrCat(where, ".tool_calls[", j, "]"));
            if (!input.ok()) return input.status();
            blocks.push_back({{"type", "tool_use"},
                              {"id", call.id()},
                              {"name", call.name()},
                              {"input", *std::move(input)}});
          }
          break;
        case tiermesh::v1::ROLE_TOOL: {
          role = "user";
          Json result = {{"type", "tool_result"}, {"tool_use_id", m.tool_call_id()}};
          if (!m.content().empty()) result["content"] = m.content();
          blocks.push_back(std::move(result));
          break;
        }
        default:
          return absl::InvalidArgumentError(absl::StrCat(where, ": bad role"));
      }
      if (blocks.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": empty message (Anthropic rejects empty content)"));
      }
      if (!turns.empty() && turns.back().first == role) {
        for (Json& b : blocks) turns.back().second.push_back(std::move(b));
      } else {
        turns.emplace_back(role, std::move(blocks));
      }
    }
    if (turns.empty()) {
      return absl::InvalidArgumentError(
          "messages: Anthropic needs at least one non-system message");
    }
    Json messages = Json::array();
    for (auto& [role, blocks] : turns) {
      messages.push_back({{"role", role}, {"content", std::move(blocks)}});
    }
    body["messages"] = std::move(messages);

    if (request.tools_size() > 0) {
      Json tools = Json::array();
      for (int i = 0; i < request.tools_size(); ++i) {
        const auto& tool = request.tools(i);
        auto schema = internal::ParseToolSchema(tool, absl::StrCat("tools[", i, "]"));
        if (!schema.ok()) return schema.status();
        Json t = {{"name", tool.name()}};
        if (!tool.description().empty()) t["description"] = tool.description();
        t["input_schema"] = schema->has_value()
                                ? **schema
                                : Json{{"type", "object"}, {"properties", Json::object()}};
        tools.push_back(std::move(t));
      }
      body["tools"] = std::move(tools);
      switch (request.tool_choice().mode()) {
        case ToolChoice::MODE_AUTO:
          body["tool_choice"] = {{"type", "auto"}};
          break;
        case ToolChoice::MODE_NONE:
          body["tool_choice"] = {{"type", "none"}};
          break;
        case ToolChoice::MODE_REQUIRED:
          body["tool_choice"] = {{"type", "any"}};
          break;
        case ToolChoice::MODE_FUNCTION:
          body["tool_choice"] = {{"type", "tool"}, {"name", request.tool_choice().function_name()}};
          break;
        default:
          break;
      }
    }
    if (p.has_temperature()) body["temperature"] = FloatToJsonNumber(p.temperature());
    if (p.has_top_p()) body["top_p"] = FloatToJsonNumber(p.top_p());
    if (p.has_top_k() && p.top_k() > 0) body["top_k"] = p.top_k();
    if (p.stop_size() > 0) {
      body["stop_sequences"] = Json(std::vector<std::string>(p.stop().begin(), p.stop().end()));
    }
    if (stream) body["stream"] = true;

    HttpRequestSpec spec;
    spec.path = "/v1/messages";
    spec.headers = {{"Content-Type", "application/json"},
                    {"Accept", stream ? "text/event-stream" : "application/json"},
                    {"anthropic-version", config_.anthropic_version}};
    spec.headers.insert(spec.headers.end(), config_.headers.begin(), config_.headers.end());
    spec.body = DumpJson(body);
    return spec;
  }

  std::pair<std::string, std::string> AuthHeader(absl::string_view key) const override {
    return {"x-api-key", std::string(key)};
  }

  absl::StatusOr<GenerateResponse> ParseResponse(const HttpResponse& response,
                                                 const ParseContext& context) const override {
    if (response.status < 200 || response.status >= 300) return MapError(response, context.now);
    absl::StatusOr<Json> parsed = ParseJson(response.body, "response body");
    if (!parsed.ok()) return internal::MalformedError(config_.name, parsed.status().message());
    const Json& root = *parsed;
    if (StringOr(root, "type") == "error" || Field(root, "error") != nullptr) {
      return MapProviderError(kind(), config_.name, 200, ParseProviderError(response.body),
                              response.headers, context.now);
    }
    const Json* content = Field(root, "content");
    if (content == nullptr || !content->is_array()) {
      return internal::MalformedError(config_.name, "no content list in the response");
    }
    GenerateResponse out;
    ChatMessage* msg = out.mutable_message();
    msg->set_role(tiermesh::v1::ROLE_ASSISTANT);
    std::string text;
    for (const Json& block : *content) {
      const std::string type = StringOr(block, "type");
      if (type == "text") {
        text += StringOr(block, "text");
      } else if (type == "tool_use") {
        tiermesh::v1::ToolCall* call = msg->add_tool_calls();
        call->set_id(text::RepairUtf8(StringOr(block, "id")));
        call->set_name(text::RepairUtf8(StringOr(block, "name")));
        const Json* input = Field(block, "input");
        call->set_arguments_json(
            input != nullptr && input->is_object() ? text::RepairUtf8(DumpJson(*input)) : "{}");
      }
    }
    msg->set_content(text::RepairUtf8(text));
    const std::string reason = StringOr(root, "stop_reason");
    out.set_finish_reason(AnthropicFinishReason(reason));
    out.set_model(StringOr(root, "model"));
    TIERMESH_RETURN_IF_ERROR(internal::FinishUnaryResponse(
        config_.name, internal::ReadUsageField(root, "usage", ReadUsage), reason, context, &out));
    return out;
  }

  std::unique_ptr<StreamParser> NewStreamParser(const ParseContext& context) const override {
    return std::make_unique<AnthropicStreamParser>(config_, context);
  }

 private:
  ProviderConfig config_;
};

}  // namespace

tiermesh::v1::FinishReason AnthropicFinishReason(absl::string_view reason) {
  if (reason == "end_turn" || reason == "stop_sequence" || reason == "pause_turn") {
    return tiermesh::v1::FINISH_REASON_STOP;
  }
  if (reason == "max_tokens" || reason == "model_context_window_exceeded") {
    return tiermesh::v1::FINISH_REASON_LENGTH;
  }
  if (reason == "tool_use") return tiermesh::v1::FINISH_REASON_TOOL_CALLS;
  if (reason == "refusal") return tiermesh::v1::FINISH_REASON_CONTENT_FILTER;
  return tiermesh::v1::FINISH_REASON_UNSPECIFIED;
}

std::unique_ptr<ProviderAdapter> NewAnthropicAdapter(ProviderConfig config) {
  return std::make_unique<AnthropicAdapter>(std::move(config));
}

}  // namespace tiermesh::cloud
