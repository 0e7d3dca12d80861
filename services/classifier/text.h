// Text primitives for the classifier: robust UTF-8 decoding (invalid bytes
// never stop a scan), repair of invalid UTF-8 for protobuf `string` fields, the
// Unicode script of a code point and a rough token estimate.
//
//   size_t i = 0;
//   while (i < text.size()) {
//     const DecodedChar c = DecodeUtf8At(text, i);  // c.valid false: one bad byte
//     i += c.length;
//   }
//   std::string clean = SanitizeUtf8(bytes);  // invalid sequences -> U+FFFD
#ifndef TIERMESH_SERVICES_CLASSIFIER_TEXT_H_
#define TIERMESH_SERVICES_CLASSIFIER_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tiermesh::classifier {

inline constexpr char32_t kReplacementChar = 0xFFFD;

struct DecodedChar {
  char32_t code_point = 0;  // kReplacementChar when !valid
  uint8_t length = 1;       // bytes consumed, 1..4, never 0
  bool valid = true;
};

// Decodes the code point starting at text[pos] (pos < text.size()). Overlong
// forms, surrogates, code points above U+10FFFF and truncated sequences are
// invalid and consume exactly one byte, so a scan always makes progress.
DecodedChar DecodeUtf8At(std::string_view text, size_t pos);

// True when `text` is entirely valid UTF-8.
bool IsValidUtf8(std::string_view text);

// `text` with every invalid byte replaced by U+FFFD (valid text is returned
// unchanged).
std::string SanitizeUtf8(std::string_view text);

// Writing systems the features tell apart.
enum class Script : uint8_t {
  kOther = 0,  // symbols, digits, punctuation, scripts not listed
  kLatin,
  kCyrillic,
  kGreek,
  kArabic,
  kHebrew,
  kDevanagari,
  kThai,
  kHangul,
  kKana,
  kHan,
};
inline constexpr int kNumScripts = 11;

// The script of a letter; kOther for anything else.
Script ScriptOf(char32_t code_point);
// Lower-case name used in feature names: "latin", "han", ...
std::string_view ScriptName(Script script);

// True for code points that are punctuation or spacing outside ASCII
// (general punctuation, CJK punctuation, full-width forms' punctuation, NBSP):
// such characters separate words.
bool IsNonAsciiSeparator(char32_t code_point);

// Approximate tokens of `text` for a BPE tokenizer: ~4 ASCII bytes per token,
// one per CJK character, two other non-ASCII characters per token.
int64_t EstimateTokens(std::string_view text);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_TEXT_H_
