// Turns a stream of arbitrary bytes (llama-server output, where a token may end in the middle of
// a character, and a small model may emit bytes that are not UTF-8 at all) into valid UTF-8 for
// protobuf `string` fields, without ever losing a complete character.
//
//   Utf8StreamRepairer repairer;
//   for (absl::string_view chunk : chunks) Send(repairer.Feed(chunk));  // valid UTF-8 each time
//   Send(repairer.Finish());  // a sequence still incomplete at the end becomes U+FFFD
//
// Rules (the WHATWG Encoding Standard's UTF-8 decoder, which is also Unicode's "maximal subpart"
// practice): every well-formed character is kept as is; every maximal ill-formed subsequence is
// replaced by exactly one U+FFFD (overlong forms, surrogates, code points above U+10FFFF, stray
// continuation bytes and bytes C0, C1, F5..FF are ill-formed); a trailing sequence that could
// still become a well-formed character is held back until the next chunk completes or breaks
// it. The output is therefore independent of how the input is split into chunks.
#ifndef TIERMESH_SERVICES_WORKER_UTF8_REPAIR_H_
#define TIERMESH_SERVICES_WORKER_UTF8_REPAIR_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tiermesh::worker {

inline constexpr absl::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

struct Utf8RepairResult {
  std::string text;          // valid UTF-8
  std::string pending;       // an incomplete trailing sequence (at most 3 bytes) held back
  int64_t replacements = 0;  // U+FFFD characters inserted
};

// The pure step behind Utf8StreamRepairer: repairs `pending` + `chunk`. With end_of_stream,
// nothing is held back (an incomplete tail becomes one U+FFFD).
[[nodiscard]] Utf8RepairResult RepairUtf8Chunk(absl::string_view pending, absl::string_view chunk,
                                               bool end_of_stream);

// Repairs a complete byte string.
[[nodiscard]] std::string RepairUtf8(absl::string_view bytes);

[[nodiscard]] bool IsValidUtf8(absl::string_view bytes);

class Utf8StreamRepairer {
 public:
  // Valid UTF-8 for everything that is decided after `chunk`.
  [[nodiscard]] std::string Feed(absl::string_view chunk);
  // The end of the stream: flushes what is held back. Feed may be called again afterwards (it
  // starts a new stream).
  [[nodiscard]] std::string Finish();

  size_t held_bytes() const { return pending_.size(); }
  // U+FFFD characters inserted so far (a signal worth logging or counting).
  int64_t replacements() const { return replacements_; }

 private:
  std::string pending_;
  int64_t replacements_ = 0;
};

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_UTF8_REPAIR_H_
