// llama-server's OpenAI-compatible chat API at the JSON edge: builds the /v1/chat/completions
// request body from a tiermesh GenerateRequest (allow-listed, range-checked parameters only) and
// parses the unary response, the streamed chunks and error bodies into C++ types at once, so
// that no JSON travels further into the worker.
//
//   TIERMESH_ASSIGN_OR_RETURN(std::string body, BuildChatCompletionBody(request,
//   /*stream=*/false));
//   ... POST body to http://127.0.0.1:<port>/v1/chat/completions ...
//   if (status_code != 200) return LlamaErrorToStatus(status_code, response_body);
//   TIERMESH_ASSIGN_OR_RETURN(LlamaCompletion completion, ParseChatCompletion(response_body));
//
// Streaming: every SSE `data:` payload other than "[DONE]" goes to ParseChatCompletionChunk
// (ChatStreamDecoder in llama_stream.h does that and enforces the end-of-stream contract).
#ifndef TIERMESH_SERVICES_WORKER_LLAMA_API_H_
#define TIERMESH_SERVICES_WORKER_LLAMA_API_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::worker {

// Limits enforced on requests before anything is sent (GenerationParams' documented ranges).
inline constexpr int32_t kMaxTokensLimit = 1 << 20;
inline constexpr int kMaxStopSequences = 4;
inline constexpr size_t kMaxStopSequenceBytes = 256;
inline constexpr int kMaxTools = 128;
inline constexpr int32_t kMaxTopK = 1 << 20;

// Checks every field of `request` that the worker forwards (messages, tools, tool choice and
// parameters). INVALID_ARGUMENT names the field and the allowed range; nothing is clamped.
[[nodiscard]] absl::Status ValidateGenerateRequest(const tiermesh::v1::GenerateRequest& request);

// The JSON body for POST /v1/chat/completions. Validates first. Only these keys are ever sent:
// model, messages, tools, tool_choice, max_tokens, temperature, top_p, top_k, stop, seed,
// presence_penalty, frequency_penalty, response_format, stream, stream_options.
// llama-server accepts only "auto", "none" and "required" as tool_choice; MODE_FUNCTION is sent
// as "required" with the tool list narrowed to that one function, which means the same.
[[nodiscard]] absl::StatusOr<std::string> BuildChatCompletionBody(
    const tiermesh::v1::GenerateRequest& request, bool stream);

struct LlamaToolCall {
  std::string id;
  std::string name;
  std::string arguments_json;
};

struct LlamaUsage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt_tokens_details.cached_tokens, when sent
};

// llama-server's own "timings" object (not part of the OpenAI API).
struct LlamaTimings {
  int64_t prompt_n = 0;  // prompt tokens evaluated (not taken from the cache)
  int64_t cache_n = 0;   // prompt tokens taken from the cache
  double prompt_ms = 0;
  int64_t predicted_n = 0;
  double predicted_ms = 0;
  double predicted_per_second = 0;
};

struct LlamaCompletion {
  std::string model;
  std::string content;            // as sent (valid UTF-8: it came out of a JSON parser)
  std::string reasoning_content;  // when the template separates reasoning
  std::vector<LlamaToolCall> tool_calls;
  tiermesh::v1::FinishReason finish_reason = tiermesh::v1::FINISH_REASON_UNSPECIFIED;
  absl::optional<LlamaUsage> usage;
  absl::optional<LlamaTimings> timings;
};

struct LlamaToolCallDelta {
  int32_t index = 0;
  std::string id;    // first delta of a call only
  std::string name;  // first delta of a call only
  std::string arguments_delta;
};

// One streamed chunk ("chat.completion.chunk").
struct LlamaChunk {
  std::string model;
  std::string content_delta;
  std::string reasoning_delta;
  std::vector<LlamaToolCallDelta> tool_call_deltas;
  absl::optional<tiermesh::v1::FinishReason> finish_reason;
  absl::optional<LlamaUsage> usage;      // the include_usage chunk (choices: [])
  absl::optional<LlamaTimings> timings;  // llama-server adds them to its last chunks
};

// "stop" -> STOP, "length" -> LENGTH, "tool_calls"/"function_call" -> TOOL_CALLS,
// "content_filter" -> CONTENT_FILTER; anything else -> UNSPECIFIED.
[[nodiscard]] tiermesh::v1::FinishReason ParseFinishReason(absl::string_view reason);

// Parses a unary /v1/chat/completions response (HTTP 200). INTERNAL for malformed JSON or a
// missing choice; an embedded {"error": ...} object becomes the status it describes.
[[nodiscard]] absl::StatusOr<LlamaCompletion> ParseChatCompletion(absl::string_view body);

// Parses one SSE data payload of a stream (not "[DONE]"). An {"error": ...} payload (how
// llama-server reports a failure after the stream started) becomes the status it describes.
[[nodiscard]] absl::StatusOr<LlamaChunk> ParseChatCompletionChunk(absl::string_view data);

// The status for a non-2xx llama-server answer. Its error body
// {"error": {"code", "message", "type"}} decides the code where it is more precise than the HTTP
// status: exceed_context_size_error -> OUT_OF_RANGE with reason "context_length_exceeded",
// unavailable_error (503 "Loading model") -> UNAVAILABLE; otherwise http::HttpStatusToCode
// applies, except that 401/403 (the worker's own API key refused: a configuration error, not
// the caller's) become INTERNAL. The message is "llama-server: <message>" (truncated).
[[nodiscard]] absl::Status LlamaErrorToStatus(int http_status, absl::string_view body);

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_LLAMA_API_H_
