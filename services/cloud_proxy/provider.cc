#include "services/cloud_proxy/provider.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

#include "services/cloud_proxy/errors.h"
#include "services/cloud_proxy/json_util.h"
#include "services/cloud_proxy/providers/adapter_util.h"
#include "services/cloud_proxy/providers/anthropic.h"
#include "services/cloud_proxy/providers/gemini.h"
#include "services/cloud_proxy/providers/openai.h"
#include "services/cloud_proxy/usage.h"
#include "services/common/status/status.h"

namespace tiermesh::cloud {

// ---------------------------------------------------------------------------
// StreamParser

absl::StatusOr<StreamUpdate> StreamParser::OnEvent(const tiermesh::http::SseEvent& event) {
  if (!error_.ok()) return error_;
  if (ended_) return absl::FailedPreconditionError("stream parser: event after OnEnd()");
  if (complete_) {
    error_ = internal::MalformedError(provider_, "an event arrived after the end of the stream");
    return error_;
  }
  StreamUpdate out;
  event_escaped_ = false;
  absl::Status status = HandleEvent(event, &out);
  if (!status.ok()) {
    error_ = status;
    return error_;
  }
  return out;
}

absl::StatusOr<StreamUpdate> StreamParser::OnEnd() {
  if (!error_.ok()) return error_;
  if (ended_) return absl::FailedPreconditionError("stream parser: OnEnd() called twice");
  ended_ = true;
  StreamUpdate out;
  if (!complete_) {
    absl::Status status = HandleEnd(&out);
    if (!status.ok()) {
      error_ = status;
      return error_;
    }
  }
  if (!complete_) {
    error_ = WithReason(absl::UnavailableError(absl::StrCat(
                            provider_, ": upstream stream ended before its end marker (cut after ",
                            output_bytes_, " bytes of output)")),
                        kReasonStreamCut);
    return error_;
  }
  return out;
}

tiermesh::v1::Usage StreamParser::usage() const {
  bool estimated = !provider_prompt_.has_value();
  const int64_t prompt = provider_prompt_.value_or(context_.estimated_prompt_tokens);
  const int64_t estimate = EstimateTokensFromBytes(output_bytes_);
  int64_t completion = estimate;
  if (provider_completion_) {
    completion = *provider_completion_;
    // A running count cut short can lag what was already received.
    if (!complete_ && estimate > completion) {
      completion = estimate;
      estimated = true;
    }
  } else {
    estimated = true;
  }
  const int64_t cached = std::min(provider_cached_.value_or(0), prompt);
  return MakeUsage(prompt, completion, cached, estimated);
}

tiermesh::v1::ToolCallDelta* StreamParser::ToolDelta(int index, StreamUpdate* out) {
  for (auto& d : *out->delta.mutable_tool_calls()) {
    if (d.index() == index) return &d;
  }
  tiermesh::v1::ToolCallDelta* d = out->delta.add_tool_calls();
  d->set_index(index);
  return d;
}

absl::StatusOr<nlohmann::json> StreamParser::ParseEventData(absl::string_view data) {
  absl::StatusOr<nlohmann::json> parsed;
  if (text::IsValidUtf8(data)) {
    parsed = ParseJson(data, "stream event data");
  } else {
    event_escaped_ = true;
    parsed = ParseJson(text::EscapeInvalidUtf8(data), "stream event data");
  }
  if (!parsed.ok()) return internal::MalformedError(provider_, parsed.status().message());
  if (!parsed->is_object()) {
    return internal::MalformedError(provider_, "stream event data is not a JSON object");
  }
  return parsed;
}

void StreamParser::EmitText(absl::string_view bytes, StreamUpdate* out) {
  if (bytes.empty()) return;
  std::string raw;
  if (event_escaped_) {
    raw = text::UnescapeRawBytes(bytes);
    bytes = raw;
  }
  output_bytes_ += static_cast<int64_t>(bytes.size());
  out->delta.mutable_content()->append(text_utf8_.Feed(bytes));
}

void StreamParser::EmitToolCall(int index, absl::string_view id, absl::string_view name,
                                absl::string_view arguments, StreamUpdate* out) {
  std::string raw;
  if (event_escaped_ && !arguments.empty()) {
    raw = text::UnescapeRawBytes(arguments);
    arguments = raw;
  }
  tiermesh::v1::ToolCallDelta* d = ToolDelta(index, out);
  if (!id.empty()) d->set_id(text::RepairUtf8(id));
  if (!name.empty()) d->set_name(text::RepairUtf8(name));
  output_bytes_ += static_cast<int64_t>(name.size() + arguments.size());
  if (!arguments.empty())
    d->mutable_arguments_json_delta()->append(tool_utf8_[index].Feed(arguments));
}

void StreamParser::SetFinishReason(tiermesh::v1::FinishReason reason, absl::string_view detail,
                                   StreamUpdate* out) {
  finish_reason_ = reason;
  finish_detail_ = std::string(detail);
  out->finish_reason_set = true;
}

absl::Status StreamParser::MarkComplete(StreamUpdate* out) {
  // Bytes held back for a split character will never be completed now.
  const std::string rest = text_utf8_.Finish();
  out->delta.mutable_content()->append(rest);
  for (auto& [index, repairer] : tool_utf8_) {
    std::string tail = repairer.Finish();
    if (!tail.empty()) ToolDelta(index, out)->mutable_arguments_json_delta()->append(tail);
  }
  TIERMESH_RETURN_IF_ERROR(
      internal::CheckFinish(provider_, finish_reason_, any_output(), finish_detail_));
  complete_ = true;
  out->complete = true;
  return absl::OkStatus();
}

void StreamParser::SetProviderUsage(const ReportedUsage& usage, StreamUpdate* out) {
  if (usage.prompt) provider_prompt_ = usage.prompt;
  if (usage.completion) provider_completion_ = usage.completion;
  if (usage.cached) provider_cached_ = usage.cached;
  if (usage.prompt || usage.completion || usage.cached) out->usage_updated = true;
}

// ---------------------------------------------------------------------------
// ProviderAdapter

absl::Status ProviderAdapter::MapError(const HttpResponse& response, absl::Time now) const {
  return MapHttpError(kind(), config().name, response.status, response.headers, response.body, now);
}

std::unique_ptr<ProviderAdapter> MakeProviderAdapter(ProviderConfig config) {
  switch (config.kind) {
    case ProviderKind::kOpenAiCompatible:
      return NewOpenAiAdapter(std::move(config));
    case ProviderKind::kAnthropic:
      return NewAnthropicAdapter(std::move(config));
    case ProviderKind::kGemini:
      return NewGeminiAdapter(std::move(config));
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// Validation

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsToolName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

bool InRange(float v, float lo, float hi) { return std::isfinite(v) && v >= lo && v <= hi; }

}  // namespace

absl::Status ValidateGenerateRequest(const tiermesh::v1::GenerateRequest& request) {
  using tiermesh::v1::ChatMessage;
  using tiermesh::v1::ToolChoice;
  if (request.messages_size() == 0) return Invalid("messages", "at least one message is required");
  absl::flat_hash_set<std::string> call_ids;  // calls made so far
  for (int i = 0; i < request.messages_size(); ++i) {
    const ChatMessage& m = request.messages(i);
    const std::string field = absl::StrCat("messages[", i, "]");
    switch (m.role()) {
      case tiermesh::v1::ROLE_SYSTEM:
      case tiermesh::v1::ROLE_USER:
      case tiermesh::v1::ROLE_ASSISTANT:
      case tiermesh::v1::ROLE_TOOL:
        break;
      default:
        return Invalid(field, "role must be SYSTEM, USER, ASSISTANT or TOOL");
    }
    if (m.tool_calls_size() > 0 && m.role() != tiermesh::v1::ROLE_ASSISTANT) {
      return Invalid(field, "only assistant messages carry tool_calls");
    }
    for (int j = 0; j < m.tool_calls_size(); ++j) {
      const auto& call = m.tool_calls(j);
      const std::string cf = absl::StrCat(field, ".tool_calls[", j, "]");
      if (call.id().empty()) return Invalid(cf, "id is required");
      if (call.name().empty()) return Invalid(cf, "name is required");
      call_ids.insert(call.id());
    }
    if (m.role() == tiermesh::v1::ROLE_TOOL) {
      if (m.tool_call_id().empty()) return Invalid(field, "a tool message needs tool_call_id");
      if (!call_ids.contains(m.tool_call_id())) {
        return Invalid(field, absl::StrCat("tool_call_id \"", m.tool_call_id(),
                                           "\" answers no earlier assistant tool call"));
      }
    } else if (!m.tool_call_id().empty()) {
      return Invalid(field, "tool_call_id is only for tool messages");
    }
  }
  absl::flat_hash_set<std::string> tool_names;
  for (int i = 0; i < request.tools_size(); ++i) {
    const auto& tool = request.tools(i);
    const std::string field = absl::StrCat("tools[", i, "]");
    if (!IsToolName(tool.name())) return Invalid(field, "name must match [A-Za-z0-9_-]{1,64}");
    if (!tool_names.insert(tool.name()).second) {
      return Invalid(field, absl::StrCat("duplicate tool name \"", tool.name(), "\""));
    }
    auto schema = internal::ParseToolSchema(tool, field);
    if (!schema.ok()) return schema.status();
  }
  const ToolChoice& choice = request.tool_choice();
  switch (choice.mode()) {
    case ToolChoice::MODE_UNSPECIFIED:
    case ToolChoice::MODE_AUTO:
    case ToolChoice::MODE_NONE:
      if (!choice.function_name().empty()) {
        return Invalid("tool_choice", "function_name is only for MODE_FUNCTION");
      }
      break;
    case ToolChoice::MODE_REQUIRED:
      if (request.tools_size() == 0) return Invalid("tool_choice", "MODE_REQUIRED needs tools");
      if (!choice.function_name().empty()) {
        return Invalid("tool_choice", "function_name is only for MODE_FUNCTION");
      }
      break;
    case ToolChoice::MODE_FUNCTION:
      if (!tool_names.contains(choice.function_name())) {
        return Invalid("tool_choice", absl::StrCat("function \"", choice.function_name(),
                                                   "\" is not one of the offered tools"));
      }
      break;
    default:
      return Invalid("tool_choice", "unknown mode");
  }
  const auto& p = request.params();
  if (p.has_max_tokens() && (p.max_tokens() < 1 || p.max_tokens() > 1048576)) {
    return Invalid("params.max_tokens", "must be in 1..1048576");
  }
  if (p.has_temperature() && !InRange(p.temperature(), 0.0f, 2.0f)) {
    return Invalid("params.temperature", "must be in 0..2");
  }
  if (p.has_top_p() && (!InRange(p.top_p(), 0.0f, 1.0f) || p.top_p() == 0.0f)) {
    return Invalid("params.top_p", "must be in (0, 1]");
  }
  if (p.has_top_k() && p.top_k() < 0) return Invalid("params.top_k", "must be >= 0");
  if (p.stop_size() > 4) return Invalid("params.stop", "at most 4 stop sequences");
  for (const std::string& s : p.stop()) {
    if (s.empty() || s.size() > 256) return Invalid("params.stop", "each must be 1..256 bytes");
  }
  if (p.has_presence_penalty() && !InRange(p.presence_penalty(), -2.0f, 2.0f)) {
    return Invalid("params.presence_penalty", "must be in -2..2");
  }
  if (p.has_frequency_penalty() && !InRange(p.frequency_penalty(), -2.0f, 2.0f)) {
    return Invalid("params.frequency_penalty", "must be in -2..2");
  }
  return absl::OkStatus();
}

}  // namespace tiermesh::cloud
