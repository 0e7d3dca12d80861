#include "services/cloud_proxy/usage.h"

namespace tiermesh::cloud {

int64_t EstimateTokensFromBytes(int64_t bytes) {
  if (bytes <= 0) return 0;
  return (bytes + kEstimateBytesPerToken - 1) / kEstimateBytesPerToken;
}

int64_t EstimatePromptTokens(const tiermesh::v1::GenerateRequest& request) {
  int64_t tokens = kEstimateReplyPrimingTokens;
  for (const auto& m : request.messages()) {
    int64_t bytes =
        static_cast<int64_t>(m.content().size() + m.name().size() + m.tool_call_id().size());
    for (const auto& call : m.tool_calls()) {
      bytes += static_cast<int64_t>(call.id().size() + call.name().size() +
                                    call.arguments_json().size());
    }
    tokens += kEstimateTokensPerMessage + EstimateTokensFromBytes(bytes);
  }
  for (const auto& tool : request.tools()) {
    const int64_t bytes = static_cast<int64_t>(tool.name().size() + tool.description().size() +
                                               tool.parameters_json_schema().size());
    tokens += kEstimateTokensPerTool + EstimateTokensFromBytes(bytes);
  }
  return tokens;
}

tiermesh::v1::Usage MakeUsage(int64_t prompt, int64_t completion, int64_t cached, bool estimated) {
  tiermesh::v1::Usage usage;
  usage.set_prompt_tokens(prompt);
  usage.set_completion_tokens(completion);
  usage.set_cached_prompt_tokens(cached);
  usage.set_total_tokens(prompt + completion);
  usage.set_estimated(estimated);
  return usage;
}

}  // namespace tiermesh::cloud
