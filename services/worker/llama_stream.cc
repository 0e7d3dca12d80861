#include "services/worker/llama_stream.h"

#include <utility>

namespace tiermesh::worker {

absl::Status ChatStreamDecoder::Fail(absl::Status status) {
  if (error_.ok()) error_ = std::move(status);
  return error_;
}

absl::StatusOr<StreamDelta> ChatStreamDecoder::OnEvent(const http::SseEvent& event) {
  if (!error_.ok()) return error_;
  if (done_) {
    return Fail(absl::InternalError("llama-server sent data after [DONE]"));
  }
  if (event.data == "[DONE]") {
    done_ = true;
    return StreamDelta{};
  }
  absl::StatusOr<LlamaChunk> chunk = ParseChatCompletionChunk(event.data);
  if (!chunk.ok()) return Fail(chunk.status());
  if (event.event == "error") {
    // Not what llama-server sends today (it uses data: {"error": ...}), but an explicit error
    // event must never pass for content.
    return Fail(absl::InternalError("llama-server sent an error event"));
  }
  if (!chunk->model.empty()) outcome_.model = chunk->model;
  if (chunk->usage.has_value()) outcome_.usage = chunk->usage;
  if (chunk->timings.has_value()) outcome_.timings = chunk->timings;
  outcome_.reasoning_bytes += static_cast<int64_t>(chunk->reasoning_delta.size());
  if (chunk->finish_reason.has_value()) {
    finish_seen_ = true;
    outcome_.finish_reason = *chunk->finish_reason;
  }
  StreamDelta delta;
  if (!chunk->content_delta.empty()) {
    ++outcome_.content_chunks;
    delta.content = repairer_.Feed(chunk->content_delta);
    outcome_.utf8_replacements = repairer_.replacements();
  }
  delta.tool_calls = std::move(chunk->tool_call_deltas);
  return delta;
}

absl::StatusOr<StreamDelta> ChatStreamDecoder::Finish() {
  if (!error_.ok()) return error_;
  if (!done_) {
    return Fail(absl::UnavailableError("llama-server's stream ended before [DONE]"));
  }
  if (!finish_seen_) {
    return Fail(absl::InternalError("llama-server's stream ended without a finish_reason"));
  }
  StreamDelta delta;
  delta.content = repairer_.Finish();
  outcome_.utf8_replacements = repairer_.replacements();
  return delta;
}

}  // namespace tiermesh::worker
