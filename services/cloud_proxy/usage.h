// Token estimates used when a provider reports no usage (a stream cut before
// its usage chunk, an OpenAI-compatible server without usage, ...). Every
// response carries usage; when any count comes from here, Usage.estimated and
// Cost.estimated are set.
//
//   int64_t prompt = tiermesh::cloud::EstimatePromptTokens(request);
//   int64_t out = tiermesh::cloud::EstimateTokensFromBytes(text.size());
//
// The estimate is deliberately simple and documented rather than tokenizer
// exact: about 4 bytes of UTF-8 per token (the common rule of thumb for
// English with BPE tokenizers), rounded up, plus 4 tokens of framing per
// message, 8 per offered tool and 3 to prime the reply (the chat-format
// overheads OpenAI documents for its models). Over-estimating slightly is the
// safe side for budgets and rate limits.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_USAGE_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_USAGE_H_

#include <cstdint>

#include "tiermesh/v1/common.pb.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::cloud {

inline constexpr int64_t kEstimateBytesPerToken = 4;
inline constexpr int64_t kEstimateTokensPerMessage = 4;
inline constexpr int64_t kEstimateTokensPerTool = 8;
inline constexpr int64_t kEstimateReplyPrimingTokens = 3;

// ceil(bytes / 4); 0 for 0 bytes.
int64_t EstimateTokensFromBytes(int64_t bytes);

// Estimated prompt tokens of a whole request (messages, tool calls, tools).
int64_t EstimatePromptTokens(const tiermesh::v1::GenerateRequest& request);

// A Usage from counts, with total filled in.
tiermesh::v1::Usage MakeUsage(int64_t prompt, int64_t completion, int64_t cached, bool estimated);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_USAGE_H_
