// Incremental Server-Sent Events (text/event-stream) decoder, following the
// WHATWG HTML "EventSource" parsing rules. It is pure (no I/O): feed it the
// body chunks exactly as they arrive from the network, in any split, and it
// calls back once per complete event.
//
//   tiermesh::http::SseDecoder decoder;
//   for (absl::string_view chunk : body_chunks) {
//     TIERMESH_RETURN_IF_ERROR(decoder.Feed(chunk, [&](tiermesh::http::SseEvent&& e) {
//       if (e.data == "[DONE]") done = true; else HandleJson(e.data);
//     }));
//   }
//   TIERMESH_RETURN_IF_ERROR(decoder.Finish());  // DATA_LOSS when cut mid-event
//
// Behaviour, by the spec unless noted:
// - Lines end in CRLF, LF or CR; a CRLF split across two chunks counts once.
// - One UTF-8 BOM at the very start of the stream is skipped (even when split
//   across chunks); a BOM anywhere else is data.
// - A line starting with ':' is a comment (servers send them as keep-alives):
//   ignored, but counted in comment_count().
// - "field: value" — one space after the colon is dropped; a line without a
//   colon is a field with an empty value. Fields: `event` sets the type,
//   `data` appends (several data lines are joined with "\n"), `id` sets the
//   last event id (ignored when it contains NUL; it persists across events as
//   the spec says), `retry` (ASCII digits only and within int64, else ignored) sets the
//   reconnection time. Unknown fields are ignored.
// - A blank line dispatches the event. An event with no data line is not
//   dispatched (spec), but its `id`/`retry` still update last_event_id() /
//   last_retry_ms().
// - SseEvent::event is "message" when the event had no `event` field (spec).
// - SseEvent::retry_ms is set only when the dispatched event's own block held a
//   valid `retry` field (the spec's retry is a stream setting; see
//   last_retry_ms()).
// - Bytes are kept exactly as received: invalid UTF-8 is NOT replaced with
//   U+FFFD (unlike a browser) so that no byte of a token is lost; consumers
//   that need text must validate (a JSON parser rejects it with an error).
// - Limits: a line longer than max_line_bytes, or an event whose fields
//   total more than max_event_bytes, fails with RESOURCE_EXHAUSTED naming the
//   limit, instead of buffering without bound. Errors are sticky: every later
//   Feed/Finish returns the same error.
// - Finish() tells a clean end (stream ended on an event boundary) from a
//   truncation (DATA_LOSS: an unterminated line or an event without its blank
//   line). The spec discards such an incomplete event, and so does this class.
#ifndef TIERMESH_SERVICES_COMMON_HTTP_SSE_H_
#define TIERMESH_SERVICES_COMMON_HTTP_SSE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace tiermesh::http {

// One dispatched event.
struct SseEvent {
  std::string event;                 // "message" when the event had no `event:` field
  std::string data;                  // data lines joined with "\n" (no trailing "\n")
  std::string id;                    // the last event id seen so far on the stream ("" if none)
  absl::optional<int64_t> retry_ms;  // a valid `retry:` field in this event's block

  friend bool operator==(const SseEvent& a, const SseEvent& b) {
    return a.event == b.event && a.data == b.data && a.id == b.id && a.retry_ms == b.retry_ms;
  }
  friend bool operator!=(const SseEvent& a, const SseEvent& b) { return !(a == b); }
};

struct SseDecoderOptions {
  // Longest accepted line, terminator excluded (a `data:` line carries one
  // JSON chunk in LLM streams; 1 MiB is far above any real one).
  size_t max_line_bytes = 1 << 20;
  // Largest accepted event: its data (with the "\n" joins) plus its type.
  size_t max_event_bytes = 4 << 20;
};

class SseDecoder {
 public:
  using EventCallback = std::function<void(SseEvent&&)>;

  SseDecoder() : SseDecoder(SseDecoderOptions{}) {}
  explicit SseDecoder(SseDecoderOptions options);

  // Decodes `chunk` (any number of bytes, any split) and calls `on_event` for
  // every event completed by it, in order. Returns RESOURCE_EXHAUSTED when a
  // limit is exceeded (events completed before the offending line were
  // delivered), FAILED_PRECONDITION after Finish().
  [[nodiscard]] absl::Status Feed(absl::string_view chunk, const EventCallback& on_event);

  // Declares the end of the stream. OK when it ended on an event boundary;
  // DATA_LOSS when it ended inside a line or inside an event (that incomplete
  // event is discarded). Further Feed() calls fail.
  [[nodiscard]] absl::Status Finish();

  // Comment lines seen so far (":" keep-alives).
  int64_t comment_count() const { return comment_count_; }
  // Events dispatched so far.
  int64_t event_count() const { return event_count_; }
  // The spec's "last event ID" and reconnection time, updated even by events
  // that were not dispatched (no data).
  const std::string& last_event_id() const { return last_event_id_; }
  absl::optional<int64_t> last_retry_ms() const { return last_retry_ms_; }

 private:
  // Handles one complete line (terminator removed).
  [[nodiscard]] absl::Status FeedBody(absl::string_view bytes, const EventCallback& on_event);
  [[nodiscard]] absl::Status ProcessLine(absl::string_view line, const EventCallback& on_event);
  [[nodiscard]] absl::Status ProcessField(absl::string_view field, absl::string_view value);
  void Dispatch(const EventCallback& on_event);
  [[nodiscard]] absl::Status Fail(absl::Status status);

  SseDecoderOptions options_;
  absl::Status error_;  // sticky first error
  bool finished_ = false;
  absl::Status finish_status_;
  bool bom_checked_ = false;
  bool skip_lf_ = false;  // the previous line ended in CR: a leading LF belongs to it
  std::string pending_;   // bytes of the current, unterminated line (or a BOM prefix)

  // The event being built.
  bool in_event_ = false;  // any line other than a comment since the last blank line
  std::string data_;
  bool has_data_ = false;
  std::string event_type_;
  absl::optional<int64_t> event_retry_ms_;

  std::string id_buffer_;  // the spec's "last event ID buffer"
  std::string last_event_id_;
  absl::optional<int64_t> last_retry_ms_;
  int64_t comment_count_ = 0;
  int64_t event_count_ = 0;
};

// Decodes a complete stream held in memory: every event, or the first error
// (including DATA_LOSS when `body` ends mid-event).
[[nodiscard]] absl::StatusOr<std::vector<SseEvent>> DecodeSseStream(absl::string_view body,
                                                                    SseDecoderOptions options = {});

}  // namespace tiermesh::http

#endif  // TIERMESH_SERVICES_COMMON_HTTP_SSE_H_
