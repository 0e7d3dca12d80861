#include "services/common/text/utf8.h"

#include <utility>

namespace tiermesh::text {
namespace {

// For a lead byte: how many continuation bytes follow, and the allowed range of the first one
// (Unicode Table 3-7: the narrower ranges exclude overlong forms, surrogates and code points
// above U+10FFFF).
struct LeadInfo {
  int continuation_bytes;  // 0: not a valid lead byte
  unsigned char first_low;
  unsigned char first_high;
};

LeadInfo Lead(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return {1, 0x80, 0xBF};
  if (b == 0xE0) return {2, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {2, 0x80, 0xBF};
  if (b == 0xED) return {2, 0x80, 0x9F};
  if (b == 0xF0) return {3, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {3, 0x80, 0xBF};
  if (b == 0xF4) return {3, 0x80, 0x8F};
  return {0, 0, 0};
}

// What starts at s[i], a byte >= 0x80: a well-formed character, a maximal ill-formed subpart
// (the next byte is looked at again as a possible lead byte), or a well-formed prefix that the end
// of `s` cut off. `length` bytes in each case.
struct Sequence {
  enum Kind { kValid, kInvalid, kIncomplete } kind;
  size_t length;
};

Sequence ScanSequence(absl::string_view s, size_t i) {
  const LeadInfo lead = Lead(static_cast<unsigned char>(s[i]));
  if (lead.continuation_bytes == 0) return {Sequence::kInvalid, 1};
  size_t j = i + 1;
  for (int k = 0; k < lead.continuation_bytes; ++k, ++j) {
    if (j >= s.size()) return {Sequence::kIncomplete, j - i};
    const auto c = static_cast<unsigned char>(s[j]);
    const unsigned char low = k == 0 ? lead.first_low : 0x80;
    const unsigned char high = k == 0 ? lead.first_high : 0xBF;
    if (c < low || c > high) return {Sequence::kInvalid, j - i};
  }
  return {Sequence::kValid, j - i};
}

// End of the ASCII run that starts at s[i].
size_t AsciiRunEnd(absl::string_view s, size_t i) {
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  return i;
}

// What becomes of a maximal ill-formed subsequence.
enum class Invalid {
  kReplace,      // one U+FFFD
  kEscapeBytes,  // each byte b as U+F700+b (EscapeInvalidUtf8)
};

// Appends the repaired form of `s` to result->text. Unless end_of_stream, an incomplete but so
// far well-formed tail goes to result->pending.
void Repair(absl::string_view s, bool end_of_stream, Invalid invalid, Utf8RepairResult* result) {
  std::string& out = result->text;
  auto bad = [&](size_t from, size_t count) {
    ++result->replacements;
    if (invalid == Invalid::kReplace) {
      out.append(kReplacementCharacter.data(), kReplacementCharacter.size());
      return;
    }
    for (size_t j = from; j < from + count; ++j) {
      const uint32_t cp = 0xF700u + static_cast<unsigned char>(s[j]);  // EF 9C|9D|9E|9F 80..BF
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  };
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      // ASCII runs are the common case; copy them in one go.
      const size_t j = AsciiRunEnd(s, i);
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const Sequence seq = ScanSequence(s, i);
    if (seq.kind == Sequence::kIncomplete) {
      if (end_of_stream) {
        bad(i, seq.length);  // the incomplete tail is one maximal subpart
      } else {
        result->pending.assign(s.data() + i, seq.length);
      }
      return;
    }
    // A genuine U+F780..U+F7FF would read back as an escaped byte: escape its own bytes too, so
    // UnescapeRawBytes restores it exactly.
    const bool escape_valid = invalid == Invalid::kEscapeBytes &&
                              static_cast<unsigned char>(s[i]) == 0xEF &&
                              (static_cast<unsigned char>(s[i + 1]) & 0xFE) == 0x9E;
    if (seq.kind == Sequence::kInvalid || escape_valid) {
      bad(i, seq.length);
    } else {
      out.append(s.data() + i, seq.length);
    }
    i += seq.length;
  }
}

}  // namespace

Utf8RepairResult RepairUtf8Chunk(absl::string_view pending, absl::string_view chunk,
                                 bool end_of_stream) {
  Utf8RepairResult result;
  std::string joined;
  absl::string_view s = chunk;
  if (!pending.empty()) {
    joined.reserve(pending.size() + chunk.size());
    joined.append(pending.data(), pending.size());
    joined.append(chunk.data(), chunk.size());
    s = joined;
  }
  result.text.reserve(s.size() + 8);
  Repair(s, end_of_stream, Invalid::kReplace, &result);
  return result;
}

std::string RepairUtf8(absl::string_view bytes) {
  return RepairUtf8Chunk({}, bytes, /*end_of_stream=*/true).text;
}

bool IsValidUtf8(absl::string_view bytes) {
  // A scan, no copy: called per stream event and per request field.
  size_t i = 0;
  while (i < bytes.size()) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      i = AsciiRunEnd(bytes, i);
      continue;
    }
    const Sequence seq = ScanSequence(bytes, i);
    if (seq.kind != Sequence::kValid) return false;
    i += seq.length;
  }
  return true;
}

size_t Utf8SequenceLength(absl::string_view s, size_t i) {
  if (static_cast<unsigned char>(s[i]) < 0x80) return 1;
  const Sequence seq = ScanSequence(s, i);
  return seq.kind == Sequence::kValid ? seq.length : 0;
}

std::string Utf8StreamRepairer::Feed(absl::string_view chunk) {
  Utf8RepairResult r = RepairUtf8Chunk(pending_, chunk, /*end_of_stream=*/false);
  pending_ = std::move(r.pending);
  replacements_ += r.replacements;
  return std::move(r.text);
}

std::string Utf8StreamRepairer::Finish() {
  Utf8RepairResult r = RepairUtf8Chunk(pending_, {}, /*end_of_stream=*/true);
  pending_.clear();
  replacements_ += r.replacements;
  return std::move(r.text);
}

std::string EscapeInvalidUtf8(absl::string_view bytes) {
  Utf8RepairResult r;
  r.text.reserve(bytes.size() + 16);
  Repair(bytes, /*end_of_stream=*/true, Invalid::kEscapeBytes, &r);
  return std::move(r.text);
}

std::string UnescapeRawBytes(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    // U+F780..U+F7FF (escaped bytes 0x80..0xFF) is EF 9E 80 .. EF 9F BF.
    if (i + 2 < text.size() && static_cast<unsigned char>(text[i]) == 0xEF) {
      const auto b1 = static_cast<unsigned char>(text[i + 1]);
      const auto b2 = static_cast<unsigned char>(text[i + 2]);
      if (b1 >= 0x9E && b1 <= 0x9F && b2 >= 0x80 && b2 <= 0xBF) {
        const uint32_t cp = 0xF000u | ((b1 & 0x3Fu) << 6) | (b2 & 0x3Fu);
        out.push_back(static_cast<char>(cp - 0xF700u));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

}  // namespace tiermesh::text
