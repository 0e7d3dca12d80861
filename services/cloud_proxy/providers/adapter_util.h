// Helpers shared by the three provider adapters (internal to the
// cloud_proxy library; not an API for other services).
//
//   ASSIGN_OR_RETURN(Json args, ParseArgumentsObject(call.arguments_json(), "messages[2]"));
//   absl::Status s = MalformedError("anthropic", "content_block_delta without index");
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_ADAPTER_UTIL_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_ADAPTER_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

#include "services/cloud_proxy/json_util.h"
#include "services/cloud_proxy/provider.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::cloud::internal {

// Tool-call arguments as a JSON object ("" means {}). INVALID_ARGUMENT when
// the text is not a JSON object.
[[nodiscard]] absl::StatusOr<Json> ParseArgumentsObject(absl::string_view arguments_json,
                                                        absl::string_view where);

// A tool's parameter schema: nullopt when empty, else a JSON object.
[[nodiscard]] absl::StatusOr<absl::optional<Json>> ParseToolSchema(const tiermesh::v1::Tool& tool,
                                                                   absl::string_view where);

// All ROLE_SYSTEM message texts in order, joined with a blank line (for the
// providers that take one top-level system prompt).
std::string JoinSystemPrompts(const tiermesh::v1::GenerateRequest& request);

// UNAVAILABLE, reason "malformed_response": the upstream sent something that
// is not its documented format.
absl::Status MalformedError(absl::string_view provider, absl::string_view what);

// Checks a finished unary/stream answer: a content-filter stop with no output
// is FAILED_PRECONDITION "content_policy"; FINISH_REASON_ERROR is
// UNAVAILABLE "upstream_finish_error". `detail` is the provider's raw reason.
[[nodiscard]] absl::Status CheckFinish(absl::string_view provider,
                                       tiermesh::v1::FinishReason reason, bool any_output,
                                       absl::string_view detail);

// Fills usage for a unary answer: provider counts when present, else
// estimates (prompt from `context`, completion from the output size).
void FillUnaryUsage(const ReportedUsage& usage, const ParseContext& context,
                    tiermesh::v1::GenerateResponse* response);

// One provider's reading of its usage object.
using UsageReader = ReportedUsage (*)(const Json& usage);

// `read` applied to parent[field] when that is an object; no counts otherwise.
ReportedUsage ReadUsageField(const Json& parent, absl::string_view field, UsageReader read);

// The end of every adapter's unary parse, once message, finish reason and
// model are set: FillUnaryUsage, then CheckFinish with the provider's raw
// finish `reason`.
[[nodiscard]] absl::Status FinishUnaryResponse(absl::string_view provider,
                                               const ReportedUsage& usage, absl::string_view reason,
                                               const ParseContext& context,
                                               tiermesh::v1::GenerateResponse* response);

// Bytes of output in a response message (text + tool names + arguments).
int64_t OutputBytes(const tiermesh::v1::ChatMessage& message);

// Adds the model config's generation defaults: max_tokens from the request,
// else `model.max_output_tokens`, else `fallback` (0: none).
int64_t EffectiveMaxTokens(const tiermesh::v1::GenerateRequest& request, const ModelConfig& model,
                           int64_t fallback);

}  // namespace tiermesh::cloud::internal

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_ADAPTER_UTIL_H_
