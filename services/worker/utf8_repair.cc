#include "services/worker/utf8_repair.h"

namespace tiermesh::worker {
namespace {

// For a lead byte: how many continuation bytes follow, and the allowed range of the first one
// (the narrower ranges exclude overlong forms, surrogates and code points above U+10FFFF).
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
  const size_t n = s.size();
  size_t i = 0;
  auto replace = [&result] {
    result.text.append(kReplacementCharacter.data(), kReplacementCharacter.size());
    ++result.replacements;
  };
  while (i < n) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      // ASCII runs are the common case; copy them in one go.
      size_t j = i + 1;
      while (j < n && static_cast<unsigned char>(s[j]) < 0x80) ++j;
      result.text.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    const LeadInfo lead = Lead(b);
    if (lead.continuation_bytes == 0) {
      replace();
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool broken = false;
    for (int k = 0; k < lead.continuation_bytes; ++k, ++j) {
      if (j >= n) {
        if (end_of_stream) {
          replace();  // the incomplete tail is one maximal subpart
        } else {
          result.pending.assign(s.data() + i, n - i);
        }
        return result;
      }
      const unsigned char c = static_cast<unsigned char>(s[j]);
      const unsigned char low = k == 0 ? lead.first_low : 0x80;
      const unsigned char high = k == 0 ? lead.first_high : 0xBF;
      if (c < low || c > high) {
        broken = true;
        break;
      }
    }
    if (broken) {
      // s[i..j) is the maximal subpart; s[j] is looked at again as a possible lead byte.
      replace();
      i = j;
      continue;
    }
    result.text.append(s.data() + i, j - i);
    i = j;
  }
  return result;
}

std::string RepairUtf8(absl::string_view bytes) {
  return RepairUtf8Chunk({}, bytes, /*end_of_stream=*/true).text;
}

bool IsValidUtf8(absl::string_view bytes) {
  // Input is valid exactly when nothing had to be replaced (a U+FFFD already present in the
  // input is a well-formed character and is not counted).
  return RepairUtf8Chunk({}, bytes, /*end_of_stream=*/true).replacements == 0;
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

}  // namespace tiermesh::worker
