// Decodes llama-server's streamed /v1/chat/completions answer (SSE events, already split by
// tiermesh::http::SseDecoder) into deltas for GenerateStream, and enforces the streaming
// contract: a stream is complete only when "data: [DONE]" arrived after a finish_reason. A body
// that ends earlier (llama-server crashed, connection cut) or an error event is an error, never
// a clean-looking truncation; usage seen so far stays available for the partial summary.
//
//   ChatStreamDecoder decoder;
//   SseDecoder sse;
//   callbacks.on_body = [&](absl::string_view chunk) {
//     absl::Status s = sse.Feed(chunk, [&](SseEvent&& e) {
//       if (!status.ok()) return;
//       absl::StatusOr<StreamDelta> delta = decoder.OnEvent(e);
//       if (!delta.ok()) status = delta.status(); else if (!delta->empty()) Send(*delta);
//     });
//     return s.ok() && status.ok();
//   };
//   ... after the body ended: TIERMESH_RETURN_IF_ERROR(sse.Finish());
//   TIERMESH_ASSIGN_OR_RETURN(StreamDelta last, decoder.Finish());   // flushes held bytes
//
// Content passes through a text::Utf8StreamRepairer, so every delta is valid UTF-8 and a character
// split across chunks is delivered whole in the later delta. Reasoning deltas (templates with
// <think> sections) are counted but not forwarded: the API has no field for them.
#ifndef TIERMESH_SERVICES_WORKER_LLAMA_STREAM_H_
#define TIERMESH_SERVICES_WORKER_LLAMA_STREAM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/optional.h"

#include "services/common/http/sse.h"
#include "services/common/text/utf8.h"
#include "services/worker/llama_api.h"

namespace tiermesh::worker {

struct StreamDelta {
  std::string content;  // valid UTF-8
  std::vector<LlamaToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && tool_calls.empty(); }
};

// What is known about the stream so far (complete once Finish() returned OK).
struct StreamOutcome {
  std::string model;
  tiermesh::v1::FinishReason finish_reason = tiermesh::v1::FINISH_REASON_UNSPECIFIED;
  absl::optional<LlamaUsage> usage;
  absl::optional<LlamaTimings> timings;
  int64_t content_chunks = 0;     // chunks that carried content
  int64_t reasoning_bytes = 0;    // reasoning text received and not forwarded
  int64_t utf8_replacements = 0;  // U+FFFD inserted by the repair
};

class ChatStreamDecoder {
 public:
  // Handles one SSE event. Returns the delta it produced (possibly empty), or the error the
  // event carried / a malformed-chunk error. Errors are sticky.
  [[nodiscard]] absl::StatusOr<StreamDelta> OnEvent(const http::SseEvent& event);

  // The HTTP body ended cleanly (the SSE decoder's Finish() was OK). Returns the last delta
  // (bytes the UTF-8 repair still held), or UNAVAILABLE when [DONE] never came, INTERNAL when
  // the stream had no finish_reason.
  [[nodiscard]] absl::StatusOr<StreamDelta> Finish();

  bool done() const { return done_; }
  const StreamOutcome& outcome() const { return outcome_; }

 private:
  absl::Status Fail(absl::Status status);

  absl::Status error_;
  bool done_ = false;
  bool finish_seen_ = false;
  text::Utf8StreamRepairer repairer_;
  StreamOutcome outcome_;
};

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_LLAMA_STREAM_H_
