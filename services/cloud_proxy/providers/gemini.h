// Adapter for the Google Gemini API (generateContent and
// streamGenerateContent?alt=sse), written from Google's public API reference.
//
//   auto adapter = NewGeminiAdapter(provider_config);   // or MakeProviderAdapter()
//   adapter->BuildRequest(request, model, stream)
//     -> POST {base_url}/v1beta/models/{upstream}:generateContent
//        or  {base_url}/v1beta/models/{upstream}:streamGenerateContent?alt=sse
//   key: x-goog-api-key header (never in the URL)
//
// Request: ROLE_SYSTEM texts (joined by a blank line) -> systemInstruction.
// user -> {role:"user", parts:[{text}]}; assistant -> {role:"model",
// parts:[{text}, {functionCall:{name, args:<arguments object>}}]}; a tool
// answer -> {role:"user", parts:[{functionResponse:{name, response}}]} where
// `name` is that of the answered call (looked up by tool_call_id among the
// earlier assistant calls, the most recent first) and `response` is the
// answer's JSON object when its content is one, else {"content": <text>}.
// Consecutive contents of one role are merged (parallel function responses
// share one turn). Tools -> tools[{functionDeclarations:[{name, description,
// parameters}]}]; tool_choice -> toolConfig.functionCallingConfig mode AUTO |
// NONE | ANY (function: ANY + allowedFunctionNames). Params ->
// generationConfig {maxOutputTokens, temperature, topP, topK, stopSequences,
// seed, presencePenalty, frequencyPenalty, responseMimeType
// "application/json" for json_mode}. Call ids are not sent (older API
// versions reject them); a functionCall without an id gets "call_<n>".
// Response: candidates[0].content.parts (text parts concatenated, `thought`
// parts skipped, functionCall -> ToolCall); finishReason STOP -> STOP (or
// TOOL_CALLS when the answer calls functions), MAX_TOKENS -> LENGTH, SAFETY |
// RECITATION | BLOCKLIST | PROHIBITED_CONTENT | SPII | IMAGE_SAFETY ->
// CONTENT_FILTER, LANGUAGE | OTHER | MALFORMED_FUNCTION_CALL | ... ->
// an abnormal end (UNAVAILABLE). A prompt blocked by promptFeedback.blockReason
// is FAILED_PRECONDITION "content_policy". Usage: prompt = promptTokenCount
// (+ toolUsePromptTokenCount), completion = candidatesTokenCount +
// thoughtsTokenCount (both billed as output), cached = cachedContentTokenCount.
// Stream: every event is a GenerateContentResponse chunk (text deltas,
// whole function calls, running usageMetadata). Gemini sends no end marker:
// the stream is complete when the body ends after a chunk with finishReason;
// a body ending without one is a cut.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_GEMINI_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_GEMINI_H_

#include <memory>

#include "services/cloud_proxy/provider.h"

namespace tiermesh::cloud {

std::unique_ptr<ProviderAdapter> NewGeminiAdapter(ProviderConfig config);

// finishReason text -> FinishReason (unknown: UNSPECIFIED). `calls_functions`
// turns STOP into TOOL_CALLS.
tiermesh::v1::FinishReason GeminiFinishReason(absl::string_view reason, bool calls_functions);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_GEMINI_H_
