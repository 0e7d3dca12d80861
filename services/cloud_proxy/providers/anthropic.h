// Adapter for the Anthropic Messages API, written from Anthropic's public API
// reference.
//
//   auto adapter = NewAnthropicAdapter(provider_config);   // or MakeProviderAdapter()
//   adapter->BuildRequest(request, model, stream) -> POST {base_url}/v1/messages
//   headers: anthropic-version (config, default 2023-06-01); key: x-api-key
//
// Request: every ROLE_SYSTEM text goes, in order and joined by a blank line,
// into the top-level `system`. Other messages become content blocks:
// user text -> {type:"text"}; assistant text + tool calls -> {type:"text"},
// {type:"tool_use", id, name, input:<arguments object>}; tool answers ->
// role "user" {type:"tool_result", tool_use_id, content}. Consecutive
// messages of the same Anthropic role are merged into one message (the API
// wants alternating roles; parallel tool results share one user turn). An
// empty message is INVALID_ARGUMENT (the API rejects empty text blocks).
// `name` is not forwarded (no such field). Tools -> {name, description,
// input_schema}; tool_choice auto -> {type:"auto"}, required -> {type:"any"},
// function -> {type:"tool", name}, none -> {type:"none"}.
// max_tokens is required by the API: the request's, else the model's
// max_output_tokens, else 4096. temperature must be <= 1 here (the API's
// range); top_k is forwarded; seed is dropped (not supported); non-zero
// presence/frequency penalties and json_mode are INVALID_ARGUMENT (no such
// feature, never silently ignored).
// Response: text blocks concatenated, tool_use blocks -> ToolCall (input
// serialized as JSON); stop_reason end_turn | stop_sequence | pause_turn ->
// STOP, max_tokens | model_context_window_exceeded -> LENGTH, tool_use ->
// TOOL_CALLS, refusal -> CONTENT_FILTER. Usage: prompt = input_tokens +
// cache_read_input_tokens + cache_creation_input_tokens (Anthropic reports
// them apart), cached = cache_read_input_tokens.
// Stream events: message_start (model, input usage), content_block_start
// (text or tool_use: id, name), content_block_delta (text_delta,
// input_json_delta; thinking/signature/citation deltas are skipped),
// content_block_stop, message_delta (stop_reason, cumulative usage),
// message_stop (complete), ping, error (mapped: overloaded_error ->
// UNAVAILABLE, ...). Unknown event types are skipped, as the API asks.
// The delta index of a tool call is its position among the tool_use blocks.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_ANTHROPIC_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_ANTHROPIC_H_

#include <memory>

#include "services/cloud_proxy/provider.h"

namespace tiermesh::cloud {

inline constexpr int64_t kAnthropicDefaultMaxTokens = 4096;

std::unique_ptr<ProviderAdapter> NewAnthropicAdapter(ProviderConfig config);

// stop_reason text -> FinishReason (unknown/absent: UNSPECIFIED).
tiermesh::v1::FinishReason AnthropicFinishReason(absl::string_view reason);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PROVIDERS_ANTHROPIC_H_
