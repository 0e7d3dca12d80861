#include "services/cloud_proxy/utf8.h"

#include <cstddef>
#include <cstdint>

namespace tiermesh::cloud {
namespace {

constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";

// Length of the sequence a lead byte starts (0: not a valid lead byte) and the
// allowed range of the byte after it (Unicode Table 3-7, well-formed UTF-8).
struct LeadInfo {
  int length;
  uint8_t second_min;
  uint8_t second_max;
};

LeadInfo Lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};  // no UTF-16 surrogates
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  return {0, 0, 0};
}

// Appends the repaired form of buf[0, n) to `out`. When `hold_tail` is set, a
// valid but incomplete sequence at the end is not emitted; its start offset is
// returned (n when nothing is held). With `escape_bytes`, each byte of an
// invalid sequence is written as U+F700+byte instead of one U+FFFD.
size_t Repair(absl::string_view buf, bool hold_tail, std::string* out, bool escape_bytes = false) {
  auto bad = [&](size_t from, size_t count) {
    if (!escape_bytes) {
      out->append(kReplacement.data(), kReplacement.size());
      return;
    }
    for (size_t j = from; j < from + count; ++j) {
      const auto b = static_cast<uint8_t>(buf[j]);  // U+F700 + b = EF 9C|9D 80..BF
      const uint32_t cp = 0xF700u + b;
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  };
  const size_t n = buf.size();
  size_t i = 0;
  while (i < n) {
    const auto b = static_cast<uint8_t>(buf[i]);
    LeadInfo lead = Lead(b);
    if (lead.length == 1) {
      out->push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    if (lead.length == 0) {
      bad(i, 1);
      ++i;
      continue;
    }
    int k = 1;
    bool truncated = false;
    bool invalid = false;
    for (; k < lead.length; ++k) {
      if (i + k >= n) {
        truncated = true;
        break;
      }
      const auto c = static_cast<uint8_t>(buf[i + k]);
      const uint8_t lo = k == 1 ? lead.second_min : 0x80;
      const uint8_t hi = k == 1 ? lead.second_max : 0xBF;
      if (c < lo || c > hi) {
        invalid = true;
        break;
      }
    }
    if (truncated && hold_tail) return i;
    if (truncated || invalid) {
      // The maximal valid prefix buf[i, i+k) becomes one U+FFFD; decoding
      // resumes at the offending byte.
      bad(i, static_cast<size_t>(k));
      i += static_cast<size_t>(k);
      continue;
    }
    out->append(buf.data() + i, static_cast<size_t>(lead.length));
    i += static_cast<size_t>(lead.length);
  }
  return n;
}

}  // namespace

std::string Utf8Repairer::Feed(absl::string_view bytes) {
  std::string buf = std::move(pending_);
  buf.append(bytes.data(), bytes.size());
  pending_.clear();
  std::string out;
  out.reserve(buf.size());
  size_t held = Repair(buf, /*hold_tail=*/true, &out);
  pending_.assign(buf, held, std::string::npos);
  return out;
}

std::string Utf8Repairer::Flush() {
  std::string out;
  Repair(pending_, /*hold_tail=*/false, &out);
  pending_.clear();
  return out;
}

std::string RepairUtf8(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  Repair(bytes, /*hold_tail=*/false, &out);
  return out;
}

std::string EscapeInvalidUtf8(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 16);
  Repair(bytes, /*hold_tail=*/false, &out, /*escape_bytes=*/true);
  return out;
}

std::string UnescapeRawBytes(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    // U+F780..U+F7FF (escaped bytes 0x80..0xFF) is EF 9E 80 .. EF 9F BF.
    if (i + 2 < text.size() && static_cast<uint8_t>(text[i]) == 0xEF) {
      const auto b1 = static_cast<uint8_t>(text[i + 1]);
      const auto b2 = static_cast<uint8_t>(text[i + 2]);
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

bool IsValidUtf8(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  Repair(bytes, /*hold_tail=*/false, &out);
  return out == bytes;
}

}  // namespace tiermesh::cloud
