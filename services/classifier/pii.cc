#include "services/classifier/pii.h"

#include <algorithm>
#include <cstdint>

namespace tiermesh::classifier {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || IsUpper(c); }
bool IsAlnum(char c) { return IsDigit(c) || IsAlpha(c); }
char ToLower(char c) { return IsUpper(c) ? static_cast<char>(c + 32) : c; }

bool IsEmailLocalChar(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool IsDomainChar(char c) { return IsAlnum(c) || c == '.' || c == '-'; }

// Checks the address around the '@' at `at`.
bool EmailAt(std::string_view text, size_t at) {
  size_t begin = at;
  while (begin > 0 && at - begin < 64 && IsEmailLocalChar(text[begin - 1])) --begin;
  if (begin == at || text[begin] == '.') return false;
  size_t end = at + 1;
  while (end < text.size() && end - at < 255 && IsDomainChar(text[end])) ++end;
  while (end > at + 1 && (text[end - 1] == '.' || text[end - 1] == '-')) --end;
  const std::string_view domain = text.substr(at + 1, end - at - 1);
  const size_t last_dot = domain.rfind('.');
  if (domain.empty() || last_dot == std::string_view::npos || last_dot == 0) return false;
  if (domain.find("..") != std::string_view::npos || domain[0] == '-') return false;
  const std::string_view tld = domain.substr(last_dot + 1);
  if (tld.size() < 2 || tld.size() > 24) return false;
  return std::all_of(tld.begin(), tld.end(), IsAlpha);
}

// Lower-cased bytes just before `pos`, for context words ("phone: ...").
std::string ContextBefore(std::string_view text, size_t pos, size_t width) {
  const size_t begin = pos > width ? pos - width : 0;
  std::string out(text.substr(begin, pos - begin));
  for (char& c : out) c = ToLower(c);
  return out;
}

bool ContainsAny(std::string_view haystack, std::initializer_list<std::string_view> needles) {
  for (std::string_view n : needles) {
    if (haystack.find(n) != std::string_view::npos) return true;
  }
  return false;
}

// A run of digit groups separated by single separators ("(415) 555-2671").
struct DigitRun {
  struct Group {
    size_t begin;  // index into `digits`
    size_t length;
    char separator;  // before this group: 0 for the first, ' ', '-', '.', ')'
  };
  std::string digits;
  std::vector<Group> groups;
  bool plus = false;   // starts with '+'
  bool paren = false;  // starts with '(' closing after the first group
};

bool IsRunSeparator(char c) { return c == ' ' || c == '-' || c == '.'; }

// Parses the run starting at `pos` (a digit, or '+'/'(' before a digit).
// Returns the index just past the run.
size_t ParseRun(std::string_view text, size_t pos, DigitRun* run) {
  size_t i = pos;
  if (text[i] == '+') {
    run->plus = true;
    ++i;
  } else if (text[i] == '(') {
    run->paren = true;
    ++i;
  }
  char separator = 0;
  while (i < text.size() && IsDigit(text[i])) {
    const size_t begin = run->digits.size();
    while (i < text.size() && IsDigit(text[i])) run->digits.push_back(text[i++]);
    run->groups.push_back({begin, run->digits.size() - begin, separator});
    if (run->groups.size() > 64 || i >= text.size()) break;
    // One separator (or ")" / ") " / ")-" closing the opening parenthesis).
    size_t j = i;
    if (text[j] == ')') {
      if (!(run->paren && run->groups.size() == 1)) break;
      separator = ')';
      ++j;
      if (j < text.size() && (text[j] == ' ' || text[j] == '-')) ++j;
    } else if (IsRunSeparator(text[j])) {
      separator = text[j];
      ++j;
    } else {
      break;
    }
    if (j >= text.size() || !IsDigit(text[j])) break;
    i = j;
  }
  return i;
}

bool CardPrefixValid(std::string_view d) {
  const auto prefix = [&](size_t n) {
    int v = 0;
    for (size_t i = 0; i < n && i < d.size(); ++i) v = v * 10 + (d[i] - '0');
    return v;
  };
  const size_t len = d.size();
  if (d[0] == '4') return len == 13 || len == 16 || len == 19;  // Visa
  const int p2 = prefix(2);
  const int p4 = prefix(4);
  if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) return len == 16;  // Mastercard
  if (p2 == 34 || p2 == 37) return len == 15;                                  // Amex
  if (p2 == 36 || p2 == 38 || (prefix(3) >= 300 && prefix(3) <= 305)) return len == 14;  // Diners
  if (p4 == 6011 || p2 == 65 || (prefix(3) >= 644 && prefix(3) <= 649) || p2 == 62) {
    return len >= 16 && len <= 19;  // Discover, UnionPay
  }
  if (p4 >= 3528 && p4 <= 3589) return len >= 16 && len <= 19;            // JCB
  if (p2 == 50 || (p2 >= 56 && p2 <= 69)) return len >= 12 && len <= 19;  // Maestro
  return false;
}

bool CardGroupingValid(const DigitRun& run, size_t first, size_t last) {
  const size_t n = last - first + 1;
  if (n == 1) return true;
  const char sep = run.groups[first + 1].separator;
  if (sep != ' ' && sep != '-') return false;
  for (size_t g = first + 1; g <= last; ++g) {
    if (run.groups[g].separator != sep) return false;
  }
  std::vector<size_t> lengths;
  for (size_t g = first; g <= last; ++g) lengths.push_back(run.groups[g].length);
  if (lengths == std::vector<size_t>{4, 6, 5} || lengths == std::vector<size_t>{4, 6, 4}) {
    return true;
  }
  for (size_t k = 0; k + 1 < n; ++k) {
    if (lengths[k] != 4) return false;
  }
  return lengths.back() >= 1 && lengths.back() <= 4;
}

bool SsnValid(std::string_view d) {  // 9 digits
  const int area = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
  const int group = (d[3] - '0') * 10 + (d[4] - '0');
  const int serial = (d[5] - '0') * 1000 + (d[6] - '0') * 100 + (d[7] - '0') * 10 + (d[8] - '0');
  return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

void CheckRun(std::string_view text, size_t begin, const DigitRun& run, PiiKinds* kinds) {
  const size_t total = run.digits.size();
  if (total < 7) return;  // shorter than anything checked below
  const auto& g = run.groups;
  const std::string context = ContextBefore(text, begin, 32);

  // National id: US SSN.
  if (!run.plus && !run.paren) {
    if (g.size() == 3 && g[0].length == 3 && g[1].length == 2 && g[2].length == 4 &&
        g[1].separator == g[2].separator && (g[1].separator == '-' || g[1].separator == ' ') &&
        SsnValid(run.digits)) {
      kinds->national_id = true;
    }
    if (g.size() == 1 && total == 9 && ContainsAny(context, {"ssn", "social security"}) &&
        SsnValid(run.digits)) {
      kinds->national_id = true;
    }
  }

  // Card: any window of up to 5 consecutive groups.
  if (!run.plus && !run.paren) {
    for (size_t first = 0; first < g.size() && !kinds->card; ++first) {
      size_t digits = 0;
      for (size_t last = first; last < g.size() && last < first + 5; ++last) {
        digits += g[last].length;
        if (digits > 19) break;
        if (digits < 13) continue;
        const std::string_view d = std::string_view(run.digits).substr(g[first].begin, digits);
        if (CardGroupingValid(run, first, last) && CardPrefixValid(d) && LuhnValid(d)) {
          kinds->card = true;
          break;
        }
      }
    }
  }

  // Phone.
  if (run.plus && total >= 8 && total <= 15) kinds->phone = true;
  const auto lengths_are = [&](std::initializer_list<size_t> want) {
    if (g.size() != want.size()) return false;
    size_t k = 0;
    for (size_t w : want) {
      if (g[k++].length != w) return false;
    }
    return true;
  };
  if (run.paren && lengths_are({3, 3, 4})) kinds->phone = true;
  if (!run.paren && !run.plus && (lengths_are({3, 3, 4}) || lengths_are({1, 3, 3, 4}))) {
    const char sep = g[1].separator;
    bool consistent = sep == '-' || sep == '.';
    for (size_t k = 2; k < g.size(); ++k) consistent = consistent && g[k].separator == sep;
    if (consistent) kinds->phone = true;
  }
  if (ContainsAny(context, {"phone", "call", "tel", "mobile", "cell", "whatsapp", "text me", "fax",
                            "contact"})) {
    if (total >= 10 && total <= 15) kinds->phone = true;
    if (total >= 7 && total <= 9 && g.size() >= 2) kinds->phone = true;
  }
}

struct IbanCountry {
  char code[3];
  uint8_t length;
};
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18},
    {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22},
    {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22},
    {"IL", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21},
    {"LT", 20}, {"LU", 20}, {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27},
    {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

int IbanLength(std::string_view country) {
  for (const IbanCountry& c : kIbanCountries) {
    if (country == c.code) return c.length;
  }
  return 0;
}

// Checks for an IBAN starting at `pos` (two upper-case letters).
bool IbanAt(std::string_view text, size_t pos) {
  if (pos + 4 > text.size() || !IsDigit(text[pos + 2]) || !IsDigit(text[pos + 3])) return false;
  const int length = IbanLength(text.substr(pos, 2));
  if (length == 0) return false;
  std::string compact;
  size_t i = pos;
  while (i < text.size() && static_cast<int>(compact.size()) < length) {
    const char c = text[i];
    if (IsAlnum(c)) {
      compact.push_back(IsAlpha(c) ? static_cast<char>(c & ~0x20) : c);
      ++i;
    } else if (c == ' ' && i + 1 < text.size() && IsAlnum(text[i + 1]) && compact.size() >= 4) {
      ++i;
    } else {
      break;
    }
  }
  if (static_cast<int>(compact.size()) != length) return false;
  if (i < text.size() && IsAlnum(text[i])) return false;  // longer than an IBAN
  return IbanValid(compact);
}

struct InterestingBytes {
  bool bytes[256];
};
constexpr InterestingBytes MakeInteresting() {
  InterestingBytes t{};
  for (int b = 0; b < 256; ++b) {
    t.bytes[b] =
        b == '@' || (b >= '0' && b <= '9') || b == '+' || b == '(' || (b >= 'A' && b <= 'Z');
  }
  return t;
}
constexpr InterestingBytes kInteresting = MakeInteresting();

}  // namespace

bool LuhnValid(std::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (size_t i = digits.size(); i-- > 0;) {
    if (!IsDigit(digits[i])) return false;
    int d = digits[i] - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool IbanValid(std::string_view compact) {
  if (compact.size() < 15 || compact.size() > 34) return false;
  if (!IsUpper(compact[0]) || !IsUpper(compact[1]) || !IsDigit(compact[2]) ||
      !IsDigit(compact[3])) {
    return false;
  }
  // Move the first four characters to the end; letters count as 10..35.
  int remainder = 0;
  const auto feed = [&](char c) {
    if (IsDigit(c)) {
      remainder = (remainder * 10 + (c - '0')) % 97;
    } else {
      remainder = (remainder * 100 + (c - 'A' + 10)) % 97;
    }
  };
  for (size_t i = 4; i < compact.size() + 4; ++i) {
    const char c = compact[i % compact.size()];
    if (!IsDigit(c) && !IsUpper(c)) return false;
    feed(c);
  }
  return remainder == 1;
}

PiiKinds DetectPii(std::string_view text) {
  PiiKinds kinds;
  DigitRun run;  // reused: prompts full of numbers should not allocate per number
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    // Only '@', digits, '+', '(' and capitals can start something to check.
    if (!kInteresting.bytes[static_cast<uint8_t>(c)]) {
      ++i;
      continue;
    }
    const bool boundary = i == 0 || !IsAlnum(text[i - 1]);
    if (c == '@') {
      if (!kinds.email && EmailAt(text, i)) kinds.email = true;
      ++i;
      continue;
    }
    if (boundary && IsUpper(c) && i + 1 < text.size() && IsUpper(text[i + 1]) && !kinds.iban) {
      if (IbanAt(text, i)) kinds.iban = true;
    }
    const bool starts_run =
        IsDigit(c) || ((c == '+' || c == '(') && i + 1 < text.size() && IsDigit(text[i + 1]));
    if (boundary && starts_run && !(c == '+' && i > 0 && text[i - 1] == ')')) {
      run.digits.clear();
      run.groups.clear();
      run.plus = false;
      run.paren = false;
      const size_t end = ParseRun(text, i, &run);
      const bool clean_end = end >= text.size() || !IsAlnum(text[end]);
      if (clean_end) CheckRun(text, i, run, &kinds);
      i = std::max(end, i + 1);
      continue;
    }
    ++i;
  }
  return kinds;
}

std::vector<std::string> PiiKindNames(const PiiKinds& kinds) {
  std::vector<std::string> names;
  if (kinds.email) names.emplace_back("email");
  if (kinds.phone) names.emplace_back("phone");
  if (kinds.card) names.emplace_back("card");
  if (kinds.iban) names.emplace_back("iban");
  if (kinds.national_id) names.emplace_back("national_id");
  return names;
}

}  // namespace tiermesh::classifier
