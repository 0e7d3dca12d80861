// UTF-8 repair for protobuf `string` fields, shared by every service that forwards bytes it did
// not write (llama-server output, cloud providers' responses, error bodies): arbitrary bytes in,
// valid UTF-8 out, without ever losing a complete character, also when a character arrives split
// across stream chunks.
//
//   text::Utf8StreamRepairer repairer;
//   for (absl::string_view chunk : chunks) Send(repairer.Feed(chunk));  // valid UTF-8 each time
//   Send(repairer.Finish());  // a sequence still incomplete at the end becomes U+FFFD
//   std::string clean = text::RepairUtf8(bytes);  // the same for a whole string
//
// Rules (the WHATWG Encoding Standard's UTF-8 decoder, which is also Unicode's "maximal subpart"
// practice): every well-formed character is kept as is; every maximal ill-formed subsequence is
// replaced by exactly one U+FFFD (overlong forms, surrogates, code points above U+10FFFF, stray
// continuation bytes and bytes C0, C1, F5..FF are ill-formed); a trailing sequence that could
// still become a well-formed character is held back until the next chunk completes or breaks
// it. The output is therefore independent of how the input is split into chunks.
#ifndef TIERMESH_SERVICES_COMMON_TEXT_UTF8_H_
#define TIERMESH_SERVICES_COMMON_TEXT_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tiermesh::text {

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

// True when `bytes` is well-formed UTF-8 as is (a U+FFFD already in the input is well-formed).
[[nodiscard]] bool IsValidUtf8(absl::string_view bytes);

// Length of the well-formed character at s[i] (1 for ASCII), or 0 when the bytes there are
// ill-formed or cut off by the end of `s`. For scanners with their own policy for bad bytes.
[[nodiscard]] size_t Utf8SequenceLength(absl::string_view s, size_t i);

class Utf8StreamRepairer {
 public:
  // Valid UTF-8 for everything that is decided after `chunk`.
  [[nodiscard]] std::string Feed(absl::string_view chunk);
  // The end of the stream: flushes what is held back. Feed may be called again afterwards (it
  // starts a new stream).
  [[nodiscard]] std::string Finish();

  bool has_pending() const { return !pending_.empty(); }
  size_t held_bytes() const { return pending_.size(); }
  // U+FFFD characters inserted so far (a signal worth logging or counting).
  int64_t replacements() const { return replacements_; }

 private:
  std::string pending_;
  int64_t replacements_ = 0;
};

// Lets a JSON parser (which rejects invalid UTF-8) read a stream chunk from a non-compliant
// server that splits a character's bytes across chunks: every byte of an ill-formed sequence
// becomes the private-use character U+F700+byte (valid UTF-8), and UnescapeRawBytes turns those
// back into the raw bytes, to be reassembled by a Utf8StreamRepairer. A genuine U+F780..U+F7FF
// in the input is escaped byte by byte too, so UnescapeRawBytes(EscapeInvalidUtf8(x)) == x for
// every x. Meant only for chunks that are not valid UTF-8 (IsValidUtf8 false): UnescapeRawBytes
// on text that never went through EscapeInvalidUtf8 would turn its U+F780..U+F7FF into bytes.
[[nodiscard]] std::string EscapeInvalidUtf8(absl::string_view bytes);
[[nodiscard]] std::string UnescapeRawBytes(absl::string_view text);

}  // namespace tiermesh::text

#endif  // TIERMESH_SERVICES_COMMON_TEXT_UTF8_H_
