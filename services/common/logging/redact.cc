#include "services/common/logging/redact.h"

#include <array>
#include <cstddef>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace tiermesh::logging {
namespace {

// Whole words that mark a name as sensitive (see IsSensitiveKey).
constexpr std::array<absl::string_view, 12> kSensitiveWords = {
    "key",    "keys",    "token",      "auth",        "authorization", "bearer",
    "cookie", "cookies", "credential", "credentials", "apikey",        "privatekey"};
// Substrings that mark a name as sensitive wherever they appear.
constexpr std::array<absl::string_view, 4> kSensitiveSubstrings = {"secret", "password", "passwd",
                                                                   "apikey"};
// API key shapes: a prefix, then at least kMinKeyBody key characters.
constexpr std::array<absl::string_view, 10> kKeyPrefixes = {
    "sk-", "sk_", "gsk_", "AIza", "xai-", "hf_", "r8_", "ghp_", "github_pat_", "glpat-"};
constexpr size_t kMinKeyBody = 16;

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}
bool IsKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
// RFC 6750 b64token characters.
bool IsCredentialChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~' || c == '+' || c == '/' || c == '=';
}
bool EndsUnquotedValue(char c) {
  return absl::ascii_isspace(static_cast<unsigned char>(c)) || c == '&' || c == ',' || c == ';' ||
         c == '"' || c == '\'' || c == '<' || c == '>' || c == ')' || c == ']' || c == '}';
}

// "Bearer <credential>" or "Basic <credential>" starting at `pos`. On a match
// sets `*cred_begin`/`*cred_end`. Basic also appears in prose ("a basic
// question"), so its credential must look like base64 (an upper-case letter,
// a digit or one of "+/=") and be at least 8 characters long.
bool MatchAuthScheme(absl::string_view t, size_t pos, size_t* cred_begin, size_t* cred_end) {
  bool basic = false;
  size_t i = pos;
  if (t.size() - pos > 6 && absl::EqualsIgnoreCase(t.substr(pos, 6), "bearer")) {
    i += 6;
  } else if (t.size() - pos > 5 && absl::EqualsIgnoreCase(t.substr(pos, 5), "basic")) {
    i += 5;
    basic = true;
  } else {
    return false;
  }
  if (i >= t.size() || t[i] != ' ') return false;
  while (i < t.size() && t[i] == ' ') ++i;
  size_t end = i;
  bool looks_encoded = false;
  while (end < t.size() && IsCredentialChar(t[end])) {
    const char c = t[end];
    if (absl::ascii_isupper(static_cast<unsigned char>(c)) ||
        absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=') {
      looks_encoded = true;
    }
    ++end;
  }
  if (end == i) return false;
  if (basic && (end - i < 8 || !looks_encoded)) return false;
  *cred_begin = i;
  *cred_end = end;
  return true;
}

// A known API key shape at `pos`; sets the prefix length and the key's end.
bool MatchKeyPrefix(absl::string_view t, size_t pos, size_t* prefix_len, size_t* end) {
  for (absl::string_view prefix : kKeyPrefixes) {
    if (!absl::StartsWith(t.substr(pos), prefix)) continue;
    size_t i = pos + prefix.size();
    while (i < t.size() && IsKeyChar(t[i])) ++i;
    if (i - pos - prefix.size() >= kMinKeyBody) {
      *prefix_len = prefix.size();
      *end = i;
      return true;
    }
  }
  return false;
}

// After a sensitive name ending at `name_end`: an optional closing quote,
// spaces, then '=' or (for quoted and header-like names) ':', then spaces.
// Returns the value's start, or npos when no separator follows.
size_t MatchSeparator(absl::string_view t, size_t name_begin, size_t name_end) {
  const absl::string_view name = t.substr(name_begin, name_end - name_begin);
  size_t i = name_end;
  bool quoted = false;
  if (name_begin > 0 && (t[name_begin - 1] == '"' || t[name_begin - 1] == '\'') && i < t.size() &&
      t[i] == t[name_begin - 1]) {
    quoted = true;
    ++i;
  }
  while (i < t.size() && t[i] == ' ') ++i;
  if (i >= t.size()) return absl::string_view::npos;
  const bool header_like = absl::StrContains(name, '-') ||
                           absl::EqualsIgnoreCase(name, "authorization") ||
                           absl::EqualsIgnoreCase(name, "cookie");
  if (t[i] == '=' || (t[i] == ':' && (quoted || header_like))) {
    ++i;
  } else {
    return absl::string_view::npos;
  }
  while (i < t.size() && t[i] == ' ') ++i;
  return i;
}

// The end of the value starting at `pos`; a quoted value ends after its
// closing quote (backslash escapes honoured).
size_t ScanValue(absl::string_view t, size_t pos, bool* quoted) {
  *quoted = false;
  if (pos < t.size() && (t[pos] == '"' || t[pos] == '\'')) {
    *quoted = true;
    const char q = t[pos];
    size_t i = pos + 1;
    while (i < t.size() && t[i] != q) {
      if (t[i] == '\\' && i + 1 < t.size()) ++i;
      ++i;
    }
    return i < t.size() ? i + 1 : i;
  }
  size_t i = pos;
  while (i < t.size() && !EndsUnquotedValue(t[i])) ++i;
  return i;
}

}  // namespace

bool IsSensitiveKey(absl::string_view key) {
  // Lower-case into a stack buffer: this runs for every log field.
  char buffer[128];
  std::string heap;
  absl::string_view lower;
  if (key.size() <= sizeof(buffer)) {
    for (size_t i = 0; i < key.size(); ++i) {
      buffer[i] = absl::ascii_tolower(static_cast<unsigned char>(key[i]));
    }
    lower = absl::string_view(buffer, key.size());
  } else {
    heap = absl::AsciiStrToLower(key);
    lower = heap;
  }
  for (absl::string_view s : kSensitiveSubstrings) {
    if (lower.find(s) != absl::string_view::npos) return true;
  }
  // Split into words at non-alphanumerics and at lower/digit -> upper changes
  // (seen in the original case), and compare the lower-case words.
  size_t begin = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    const bool at_end = i == key.size();
    const bool separator = !at_end && !absl::ascii_isalnum(static_cast<unsigned char>(key[i]));
    const bool camel_break = !at_end && i > begin &&
                             absl::ascii_isupper(static_cast<unsigned char>(key[i])) &&
                             !absl::ascii_isupper(static_cast<unsigned char>(key[i - 1]));
    if (at_end || separator || camel_break) {
      if (i > begin) {
        const absl::string_view word = lower.substr(begin, i - begin);
        for (absl::string_view w : kSensitiveWords) {
          if (word == w) return true;
        }
      }
      begin = separator ? i + 1 : i;
    }
  }
  return false;
}

std::string RedactSecrets(absl::string_view t) {
  std::string out;
  out.reserve(t.size());
  size_t i = 0;
  while (i < t.size()) {
    const bool word_start = IsNameChar(t[i]) && (i == 0 || !IsNameChar(t[i - 1]));
    if (!word_start) {
      out.push_back(t[i++]);
      continue;
    }
    size_t begin = 0;
    size_t end = 0;
    const char first = t[i];
    if ((first == 'b' || first == 'B') && MatchAuthScheme(t, i, &begin, &end)) {
      out.append(t.data() + i, begin - i);
      out.append(kRedacted.data(), kRedacted.size());
      i = end;
      continue;
    }
    if (MatchKeyPrefix(t, i, &begin, &end)) {
      out.append(t.data() + i, begin);
      out.append(kRedacted.data(), kRedacted.size());
      i = end;
      continue;
    }
    size_t name_end = i;
    while (name_end < t.size() && IsNameChar(t[name_end])) ++name_end;
    // The separator check is cheap; the key check only runs when one follows.
    size_t value_begin = MatchSeparator(t, i, name_end);
    if (value_begin != absl::string_view::npos && !IsSensitiveKey(t.substr(i, name_end - i))) {
      value_begin = absl::string_view::npos;
    }
    if (value_begin == absl::string_view::npos) {
      out.append(t.data() + i, name_end - i);
      i = name_end;
      continue;
    }
    out.append(t.data() + i, value_begin - i);
    i = value_begin;
    // "Authorization: Bearer x": let the scheme rule redact only the credential.
    if (MatchAuthScheme(t, i, &begin, &end)) continue;
    bool quoted = false;
    const size_t value_end = ScanValue(t, i, &quoted);
    if (value_end == i) continue;
    if (quoted) out.push_back(t[i]);
    out.append(kRedacted.data(), kRedacted.size());
    if (quoted && value_end - i >= 2 && t[value_end - 1] == t[i]) out.push_back(t[i]);
    i = value_end;
  }
  return out;
}

}  // namespace tiermesh::logging
