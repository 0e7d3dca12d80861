#include "services/classifier/text.h"

#include <cstring>

namespace tiermesh::classifier {

DecodedChar DecodeUtf8At(std::string_view text, size_t pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) return {b0, 1, true};
  const DecodedChar invalid{kReplacementChar, 1, false};
  int length;
  char32_t cp;
  char32_t min_cp;
  if ((b0 & 0xE0) == 0xC0) {
    length = 2;
    cp = b0 & 0x1F;
    min_cp = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    length = 3;
    cp = b0 & 0x0F;
    min_cp = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    length = 4;
    cp = b0 & 0x07;
    min_cp = 0x10000;
  } else {
    return invalid;  // continuation byte or 0xF8..0xFF
  }
  if (pos + length > text.size()) return invalid;
  for (int i = 1; i < length; ++i) {
    const uint8_t b = byte(pos + i);
    if ((b & 0xC0) != 0x80) return invalid;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return invalid;
  return {cp, static_cast<uint8_t>(length), true};
}

bool IsValidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const DecodedChar c = DecodeUtf8At(text, i);
    if (!c.valid) return false;
    i += c.length;
  }
  return true;
}

std::string SanitizeUtf8(std::string_view text) {
  if (IsValidUtf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    const DecodedChar c = DecodeUtf8At(text, i);
    if (c.valid) {
      out.append(text.substr(i, c.length));
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
    }
    i += c.length;
  }
  return out;
}

Script ScriptOf(char32_t cp) {
  if (cp < 0x80) {
    return ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') ? Script::kLatin : Script::kOther;
  }
  if (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) return Script::kLatin;
  if (cp >= 0x1E00 && cp <= 0x1EFF) return Script::kLatin;
  if (cp >= 0x370 && cp <= 0x3FF) return Script::kGreek;
  if (cp >= 0x400 && cp <= 0x52F) return Script::kCyrillic;
  if (cp >= 0x590 && cp <= 0x5FF) return Script::kHebrew;
  if ((cp >= 0x600 && cp <= 0x6FF) || (cp >= 0x750 && cp <= 0x77F)) return Script::kArabic;
  if (cp >= 0x900 && cp <= 0x97F) return Script::kDevanagari;
  if (cp >= 0xE00 && cp <= 0xE7F) return Script::kThai;
  if ((cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0xAC00 && cp <= 0xD7AF)) return Script::kHangul;
  if (cp >= 0x3040 && cp <= 0x30FF) return Script::kKana;
  if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
      (cp >= 0xF900 && cp <= 0xFAFF)) {
    return Script::kHan;
  }
  return Script::kOther;
}

std::string_view ScriptName(Script script) {
  switch (script) {
    case Script::kLatin:
      return "latin";
    case Script::kCyrillic:
      return "cyrillic";
    case Script::kGreek:
      return "greek";
    case Script::kArabic:
      return "arabic";
    case Script::kHebrew:
      return "hebrew";
    case Script::kDevanagari:
      return "devanagari";
    case Script::kThai:
      return "thai";
    case Script::kHangul:
      return "hangul";
    case Script::kKana:
      return "kana";
    case Script::kHan:
      return "han";
    case Script::kOther:
      break;
  }
  return "other";
}

bool IsNonAsciiSeparator(char32_t cp) {
  return cp == 0xA0 || (cp >= 0xA1 && cp <= 0xBF && cp != 0xAA && cp != 0xB5 && cp != 0xBA) ||
         cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x206F) ||
         (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xFF01 && cp <= 0xFF0F) ||
         (cp >= 0xFF1A && cp <= 0xFF20) || cp == kReplacementChar || cp == 0xFEFF;
}

int64_t EstimateTokens(std::string_view text) {
  int64_t ascii = 0;
  int64_t cjk = 0;
  int64_t other = 0;
  for (size_t i = 0; i < text.size();) {
    // Skip ASCII eight bytes at a time.
    if (i + 8 <= text.size()) {
      uint64_t chunk;
      std::memcpy(&chunk, text.data() + i, 8);
      if ((chunk & 0x8080808080808080ULL) == 0) {
        ascii += 8;
        i += 8;
        continue;
      }
    }
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++ascii;
      ++i;
      continue;
    }
    const DecodedChar c = DecodeUtf8At(text, i);
    i += c.length;
    const Script s = ScriptOf(c.code_point);
    if (s == Script::kHan || s == Script::kKana || s == Script::kHangul) {
      ++cjk;
    } else {
      ++other;
    }
  }
  return (ascii + 3) / 4 + cjk + (other + 1) / 2;
}

}  // namespace tiermesh::classifier
