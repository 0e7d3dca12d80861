#include "services/cloud_proxy/providers/adapter_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "services/cloud_proxy/errors.h"
#include "services/cloud_proxy/usage.h"
#include "services/common/status/status.h"

namespace tiermesh::cloud::internal {

absl::StatusOr<Json> ParseArgumentsObject(absl::string_view arguments_json,
                                          absl::string_view where) {
  if (arguments_json.empty()) return Json::object();
  absl::StatusOr<Json> j = ParseJson(arguments_json, absl::StrCat(where, " arguments_json"));
  if (!j.ok()) return j.status();
  if (!j->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " arguments_json must be a JSON object"));
  }
  return j;
}

absl::StatusOr<absl::optional<Json>> ParseToolSchema(const tiermesh::v1::Tool& tool,
                                                     absl::string_view where) {
  if (tool.parameters_json_schema().empty()) return absl::optional<Json>();
  absl::StatusOr<Json> j =
      ParseJson(tool.parameters_json_schema(), absl::StrCat(where, " parameters_json_schema"));
  if (!j.ok()) return j.status();
  if (!j->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " parameters_json_schema must be a JSON object"));
  }
  return absl::optional<Json>(*std::move(j));
}

std::string JoinSystemPrompts(const tiermesh::v1::GenerateRequest& request) {
  std::string out;
  for (const auto& m : request.messages()) {
    if (m.role() != tiermesh::v1::ROLE_SYSTEM) continue;
    if (!out.empty()) out += "\n\n";
    out += m.content();
  }
  return out;
}

absl::Status MalformedError(absl::string_view provider, absl::string_view what) {
  return WithReason(
      absl::UnavailableError(absl::StrCat(provider, ": malformed upstream answer: ", what)),
      kReasonMalformed);
}

absl::Status CheckFinish(absl::string_view provider, tiermesh::v1::FinishReason reason,
                         bool any_output, absl::string_view detail) {
  if (reason == tiermesh::v1::FINISH_REASON_CONTENT_FILTER && !any_output) {
    return WithReason(
        absl::FailedPreconditionError(absl::StrCat(
            provider, ": the provider withheld the answer (content policy: ", detail, ")")),
        kReasonContentPolicy);
  }
  if (reason == tiermesh::v1::FINISH_REASON_ERROR) {
    return WithReason(absl::UnavailableError(
                          absl::StrCat(provider, ": generation ended abnormally (", detail, ")")),
                      kReasonUpstreamFinishError);
  }
  return absl::OkStatus();
}

int64_t OutputBytes(const tiermesh::v1::ChatMessage& message) {
  int64_t bytes = static_cast<int64_t>(message.content().size());
  for (const auto& call : message.tool_calls()) {
    bytes += static_cast<int64_t>(call.name().size() + call.arguments_json().size());
  }
  return bytes;
}

void FillUnaryUsage(const ReportedUsage& usage, const ParseContext& context,
                    tiermesh::v1::GenerateResponse* response) {
  const bool estimated = !usage.prompt || !usage.completion;
  const int64_t p = usage.prompt.value_or(context.estimated_prompt_tokens);
  const int64_t c =
      usage.completion.value_or(EstimateTokensFromBytes(OutputBytes(response->message())));
  const int64_t k = std::min(usage.cached.value_or(0), p);
  *response->mutable_usage() = MakeUsage(p, c, k, estimated);
}

ReportedUsage ReadUsageField(const Json& parent, absl::string_view field, UsageReader read) {
  const Json* usage = Field(parent, field);
  if (usage == nullptr || !usage->is_object()) return {};
  return read(*usage);
}

absl::Status FinishUnaryResponse(absl::string_view provider, const ReportedUsage& usage,
                                 absl::string_view reason, const ParseContext& context,
                                 tiermesh::v1::GenerateResponse* response) {
  FillUnaryUsage(usage, context, response);
  return CheckFinish(provider, response->finish_reason(), OutputBytes(response->message()) > 0,
                     reason);
}

int64_t EffectiveMaxTokens(const tiermesh::v1::GenerateRequest& request, const ModelConfig& model,
                           int64_t fallback) {
  if (request.params().has_max_tokens()) return request.params().max_tokens();
  if (model.max_output_tokens > 0) return model.max_output_tokens;
  return fallback;
}

}  // namespace tiermesh::cloud::internal
