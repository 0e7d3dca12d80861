// Fuzz target for the SSE decoder (services/common/http/sse.h).
// Input: byte 0 picks the limits and the chunking; the rest is the stream.
// Invariants checked: no crash/UB (sanitizers), and the same events and final
// status whatever the chunking (whole, split in two, three, byte by byte),
// and well-formed events (no line breaks where the format cannot put them).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "services/common/http/sse.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using tiermesh::http::SseDecoder;
using tiermesh::http::SseDecoderOptions;
using tiermesh::http::SseEvent;

struct Outcome {
  std::vector<SseEvent> events;
  absl::Status status;
};

Outcome Decode(const std::vector<absl::string_view>& pieces, const SseDecoderOptions& options) {
  Outcome out;
  SseDecoder decoder(options);
  for (absl::string_view piece : pieces) {
    out.status = decoder.Feed(piece, [&](SseEvent&& e) { out.events.push_back(std::move(e)); });
    if (!out.status.ok()) return out;
  }
  out.status = decoder.Finish();
  return out;
}

void CheckSame(const Outcome& a, const Outcome& b) {
  FUZZ_CHECK(a.events == b.events);
  FUZZ_CHECK(a.status == b.status);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  SseDecoderOptions options;
  if (control & 0x80) {  // tiny limits, so the limit paths get exercised too
    options.max_line_bytes = 1 + (control & 0x0f) * 3;
    options.max_event_bytes = 1 + ((control >> 4) & 0x07) * 7;
  }

  const Outcome whole = Decode({input}, options);
  for (const SseEvent& event : whole.events) {
    FUZZ_CHECK(!event.event.empty());
    FUZZ_CHECK(event.data.find('\r') == std::string::npos);
    FUZZ_CHECK(event.event.find_first_of("\r\n") == std::string::npos);
    FUZZ_CHECK(event.id.find_first_of(std::string("\r\n\0", 3)) == std::string::npos);
    FUZZ_CHECK(!event.retry_ms.has_value() || *event.retry_ms >= 0);
    FUZZ_CHECK(event.data.size() + event.event.size() <= options.max_event_bytes + 7);
  }
  FUZZ_CHECK(whole.status.ok() || whole.status.code() == absl::StatusCode::kDataLoss ||
             whole.status.code() == absl::StatusCode::kResourceExhausted);

  const size_t cut = input.empty() ? 0 : (static_cast<size_t>(control) * 131u) % (input.size() + 1);
  CheckSame(whole, Decode({input.substr(0, cut), input.substr(cut)}, options));

  const size_t cut2 = cut + (input.size() - cut) / 2;
  CheckSame(whole, Decode({input.substr(0, cut), input.substr(cut, cut2 - cut), input.substr(cut2)},
                          options));

  if (input.size() <= 512) {
    std::vector<absl::string_view> bytes;
    for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
    CheckSame(whole, Decode(bytes, options));
  }
  return 0;
}
