// Fuzz target for the UTF-8 repair (services/common/text/utf8.h).
// Input: byte 0 picks a split point; the rest is the byte string.
// Invariants: the repair is valid UTF-8 and leaves valid input unchanged; streaming it in two
// pieces (at the split) or byte by byte gives the whole-string repair; the replacement count is
// zero exactly for valid input; escaping is valid UTF-8 and unescapes to the input (also when
// the input holds the private-use characters the escape uses).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"

#include "services/common/text/utf8.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace text = tiermesh::text;
  if (size == 0) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);

  const std::string whole = text::RepairUtf8(input);
  const bool valid = text::IsValidUtf8(input);
  FUZZ_CHECK(text::IsValidUtf8(whole));
  FUZZ_CHECK(valid == (whole == input));

  text::Utf8StreamRepairer two;
  std::string streamed = two.Feed(input.substr(0, split));
  FUZZ_CHECK(text::IsValidUtf8(streamed));
  const std::string second = two.Feed(input.substr(split));
  FUZZ_CHECK(text::IsValidUtf8(second));
  FUZZ_CHECK(two.held_bytes() <= 3);
  streamed += second;
  streamed += two.Finish();
  FUZZ_CHECK(streamed == whole);
  FUZZ_CHECK((two.replacements() == 0) == valid);

  text::Utf8StreamRepairer bytes;
  std::string one_by_one;
  for (char c : input) one_by_one += bytes.Feed(absl::string_view(&c, 1));
  one_by_one += bytes.Finish();
  FUZZ_CHECK(one_by_one == whole);

  const std::string escaped = text::EscapeInvalidUtf8(input);
  FUZZ_CHECK(text::IsValidUtf8(escaped));
  FUZZ_CHECK(text::UnescapeRawBytes(escaped) == input);
  return 0;
}
