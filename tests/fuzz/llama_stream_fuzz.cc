// Fuzz target for the worker's decoder of llama-server's streamed answer
// (services/worker/llama_stream.h) behind the SSE decoder.
// Input: byte 0 picks a split point; the rest is the HTTP body.
// Invariants: no crash/UB (sanitizers); every delta's content is valid UTF-8; errors are sticky;
// a stream that finished OK saw [DONE]; the result does not depend on where the body was split.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "services/common/http/sse.h"
#include "services/common/text/utf8.h"
#include "services/worker/llama_stream.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using tiermesh::http::SseDecoder;
using tiermesh::http::SseEvent;
using tiermesh::worker::ChatStreamDecoder;
using tiermesh::worker::StreamDelta;

struct Result {
  std::string content;
  size_t tool_call_deltas = 0;
  absl::Status status;
};

Result Decode(const std::vector<absl::string_view>& pieces) {
  Result r;
  ChatStreamDecoder decoder;
  SseDecoder sse;
  auto take = [&](const absl::StatusOr<StreamDelta>& delta) {
    if (!delta.ok()) {
      r.status = delta.status();
      return;
    }
    FUZZ_CHECK(tiermesh::text::IsValidUtf8(delta->content));
    r.content += delta->content;
    r.tool_call_deltas += delta->tool_calls.size();
  };
  for (absl::string_view piece : pieces) {
    const absl::Status s = sse.Feed(piece, [&](SseEvent&& e) {
      if (!r.status.ok()) return;
      take(decoder.OnEvent(e));
      if (!r.status.ok()) {
        // Sticky: the same decoder refuses every later event.
        FUZZ_CHECK(!decoder.OnEvent(e).ok());
      }
    });
    if (!s.ok() && r.status.ok()) r.status = s;
    if (!r.status.ok()) return r;
  }
  if (absl::Status s = sse.Finish(); !s.ok()) {
    r.status = s;
    return r;
  }
  take(decoder.Finish());
  if (r.status.ok()) FUZZ_CHECK(decoder.done());
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = body.empty() ? 0 : data[0] % (body.size() + 1);
  const Result whole = Decode({body});
  const Result two = Decode({body.substr(0, split), body.substr(split)});
  FUZZ_CHECK(whole.status.code() == two.status.code());
  if (whole.status.ok()) {
    FUZZ_CHECK(whole.content == two.content);
    FUZZ_CHECK(whole.tool_call_deltas == two.tool_call_deltas);
  }
  return 0;
}
