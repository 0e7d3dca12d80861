// Shared body of the three provider stream-parser fuzz targets
// (openai_stream_fuzz, anthropic_stream_fuzz, gemini_stream_fuzz).
// Input: byte 0 picks a split point; the rest is an SSE body as a provider
// would send it. It is decoded with the real SseDecoder and fed to the
// provider's StreamParser.
// Invariants: no crash/UB (sanitizers); every delta is valid UTF-8; usage is
// always consistent (non-negative, total = prompt + completion, cached <=
// prompt); OK at the end only when the parser says complete; errors are
// sticky; the outcome does not depend on how the body was split.
#ifndef TIERMESH_TESTS_FUZZ_CLOUD_STREAM_FUZZ_H_
#define TIERMESH_TESTS_FUZZ_CLOUD_STREAM_FUZZ_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "services/cloud_proxy/provider.h"
#include "services/common/http/sse.h"
#include "services/common/text/utf8.h"
#include "tests/fuzz/fuzz_check.h"

namespace tiermesh::cloud::fuzz {

struct Outcome {
  std::string text;
  std::string tool_data;
  absl::StatusCode code = absl::StatusCode::kOk;
  bool complete = false;
  tiermesh::v1::Usage usage;
};

inline void CheckUsage(const tiermesh::v1::Usage& u) {
  FUZZ_CHECK(u.prompt_tokens() >= 0);
  FUZZ_CHECK(u.completion_tokens() >= 0);
  FUZZ_CHECK(u.cached_prompt_tokens() >= 0);
  FUZZ_CHECK(u.cached_prompt_tokens() <= u.prompt_tokens());
  FUZZ_CHECK(u.total_tokens() == u.prompt_tokens() + u.completion_tokens());
}

inline Outcome Run(ProviderKind kind, const std::vector<absl::string_view>& pieces) {
  ProviderConfig config;
  config.name = "fuzz";
  config.kind = kind;
  std::unique_ptr<ProviderAdapter> adapter = MakeProviderAdapter(config);
  std::unique_ptr<StreamParser> parser = adapter->NewStreamParser({17, absl::UnixEpoch()});
  tiermesh::http::SseDecoderOptions options;
  options.max_line_bytes = 1 << 16;
  options.max_event_bytes = 1 << 16;
  tiermesh::http::SseDecoder decoder(options);
  Outcome out;
  absl::Status error;
  auto apply = [&](const absl::StatusOr<StreamUpdate>& u) {
    if (!u.ok()) {
      error = u.status();
      return;
    }
    FUZZ_CHECK(text::IsValidUtf8(u->delta.content()));
    out.text += u->delta.content();
    for (const auto& d : u->delta.tool_calls()) {
      FUZZ_CHECK(text::IsValidUtf8(d.id()));
      FUZZ_CHECK(text::IsValidUtf8(d.name()));
      FUZZ_CHECK(text::IsValidUtf8(d.arguments_json_delta()));
      FUZZ_CHECK(d.index() >= 0);
      out.tool_data += std::to_string(d.index()) + d.id() + d.name() + d.arguments_json_delta();
    }
    CheckUsage(parser->usage());
  };
  bool decoder_failed = false;
  for (absl::string_view piece : pieces) {
    absl::Status fed = decoder.Feed(piece, [&](tiermesh::http::SseEvent&& e) {
      if (error.ok()) apply(parser->OnEvent(e));
    });
    if (!fed.ok()) {
      decoder_failed = true;
      break;
    }
  }
  if (error.ok() && !decoder_failed) {
    // A body ending inside an event is a cut (UpstreamClient reports it so).
    if (decoder.Finish().ok()) {
      apply(parser->OnEnd());
    } else {
      decoder_failed = true;
    }
  }
  if (!error.ok()) {
    out.code = error.code();
    FUZZ_CHECK(parser->failed());
    // Sticky: the parser keeps failing the same way.
    absl::StatusOr<StreamUpdate> again = parser->OnEvent(tiermesh::http::SseEvent{});
    FUZZ_CHECK(!again.ok());
  } else if (!decoder_failed) {
    FUZZ_CHECK(parser->complete());
  }
  out.complete = parser->complete();
  out.usage = parser->usage();
  CheckUsage(out.usage);
  return out;
}

inline int FuzzOne(ProviderKind kind, const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t cut = body.empty() ? 0 : data[0] % (body.size() + 1);
  const Outcome whole = Run(kind, {body});
  const Outcome split = Run(kind, {body.substr(0, cut), body.substr(cut)});
  FUZZ_CHECK(whole.text == split.text);
  FUZZ_CHECK(whole.tool_data == split.tool_data);
  FUZZ_CHECK(whole.code == split.code);
  FUZZ_CHECK(whole.complete == split.complete);
  return 0;
}

}  // namespace tiermesh::cloud::fuzz

#endif  // TIERMESH_TESTS_FUZZ_CLOUD_STREAM_FUZZ_H_
