// Adapter for the OpenAI Chat Completions API and the servers that copy it
// (OpenRouter, Groq, Together, DeepSeek, vLLM, llama-server, ...), written
// from OpenAI's public API reference.
//
//   auto adapter = NewOpenAiAdapter(provider_config);   // or MakeProviderAdapter()
//   adapter->BuildRequest(request, model, /*stream=*/true)
//     -> POST {base_url}/chat/completions  (base_url carries the version: .../v1)
//
// Request: messages map 1:1 (system/user/assistant/tool roles; assistant
// tool_calls as {id, type:"function", function:{name, arguments}}; tool
// answers as role "tool" with tool_call_id; `name` forwarded). Tools become
// {type:"function", function:{name, description, parameters}}; tool_choice
// "auto" | "none" | "required" | {type:"function", function:{name}}. Params:
// max_tokens (or max_completion_tokens, per model config), temperature,
// top_p, stop, seed, presence/frequency_penalty, response_format json_object;
// top_k only for models configured with supports_top_k. Streaming adds
// stream_options.include_usage (unless the provider config turns it off).
// Response: choices[0] (message content, tool_calls, finish_reason stop |
// length | tool_calls | content_filter), usage (prompt_tokens,
// completion_tokens, prompt_tokens_details.cached_tokens).
// Stream: `data:` chunks with choices[0].delta {content, tool_calls[{index,
// id, function{name, arguments}}]}, finish_reason, a last usage chunk with
// empty choices, then `data: [DONE]` (the only complete end). A chunk holding
// {"error": ...} (OpenRouter and others report mid-stream failures so) ends
// the stream with the mapped error.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_OPENAI_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_OPENAI_H_

#include <memory>

#include "services/cloud_proxy/provider.h"

namespace tiermesh::cloud {

std::unique_ptr<ProviderAdapter> NewOpenAiAdapter(ProviderConfig config);

// finish_reason text -> FinishReason (unknown/absent: UNSPECIFIED).
tiermesh::v1::FinishReason OpenAiFinishReason(absl::string_view reason);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_OPENAI_H_
