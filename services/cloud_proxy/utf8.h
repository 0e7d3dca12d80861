// Turns upstream bytes into valid UTF-8 for protobuf `string` fields without
// losing characters that arrive split across stream chunks.
//
//   tiermesh::cloud::Utf8Repairer r;
//   std::string a = r.Feed("caf\xC3");   // "caf"   (the lead byte of "é" is held)
//   std::string b = r.Feed("\xA9!");     // "é!"
//   std::string c = r.Flush();           // ""      (nothing held)
//
// Invalid sequences become U+FFFD, one per maximal invalid subpart (the
// WHATWG/Unicode "substitution of maximal subparts" practice), so a token is
// never silently dropped. An incomplete sequence still held at Flush() also
// becomes U+FFFD.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_UTF8_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_UTF8_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tiermesh::cloud {

class Utf8Repairer {
 public:
  // Appends `bytes` and returns the valid text that can be emitted now.
  std::string Feed(absl::string_view bytes);
  // Ends the stream: returns U+FFFD if an incomplete sequence was held.
  std::string Flush();
  bool has_pending() const { return !pending_.empty(); }

 private:
  std::string pending_;  // at most 3 bytes: a valid but incomplete prefix
};

// Whole-string repair (Feed + Flush).
std::string RepairUtf8(absl::string_view bytes);

// True when `bytes` is valid UTF-8 as is.
bool IsValidUtf8(absl::string_view bytes);

// Lets a JSON parser (which rejects invalid UTF-8) read a stream chunk from a
// non-compliant server that splits a character's bytes across chunks: every
// byte of an invalid sequence becomes the private-use character U+F700+byte
// (valid UTF-8), and UnescapeRawBytes turns those back into the raw bytes, to
// be reassembled by a Utf8Repairer. Only applied to chunks that are not valid
// UTF-8, so a genuine U+F7xx in a valid chunk is never touched.
std::string EscapeInvalidUtf8(absl::string_view bytes);
std::string UnescapeRawBytes(absl::string_view text);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_UTF8_H_
