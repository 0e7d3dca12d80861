#include "services/classifier/features.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "services/classifier/text.h"

namespace tiermesh::classifier {
namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

// Namespace tags keep the four hashed families apart.
constexpr uint64_t kNsWord = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kNsBigram = 0xbf58476d1ce4e5b9ULL;
constexpr uint64_t kNsChars = 0x94d049bb133111ebULL;
constexpr uint64_t kNsSymbol = 0x2545f4914f6cdd1dULL;

// MurmurHash3's 64-bit finaliser: a cheap, well-mixing bijection.
inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

inline uint64_t Fnv1a(std::string_view bytes) {
  uint64_t h = kFnvOffset;
  for (const char c : bytes) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return h;
}

constexpr std::string_view kStructuralNames[] = {
    "bias",
    "len_log",
    "total_len_log",
    "words_log",
    "code_fence",
    "inline_code",
    "code_symbols",
    "indented_lines",
    "math_symbols",
    "digit_ratio",
    "equation",
    "questions_log",
    "multi_question",
    "ends_with_question",
    "list_markers",
    "newlines_log",
    "turns_log",
    "messages_log",
    "has_system",
    "has_tool_calls",
    "tools_offered",
    "tools_count_log",
    "url",
    "non_ascii_ratio",
    "uppercase_ratio",
    "context_len_log",
    "script:latin",
    "script:cyrillic",
    "script:greek",
    "script:arabic",
    "script:hebrew",
    "script:devanagari",
    "script:thai",
    "script:hangul",
    "script:kana",
    "script:han",
    "lang:en",
    "lang:es",
    "lang:fr",
    "lang:de",
    "lang:pt",
    "lang:it",
};
static_assert(sizeof(kStructuralNames) / sizeof(kStructuralNames[0]) == kNumStructural,
              "one name per structural feature");

// Frequent function words per language; a Latin-script text whose words hit
// one list clearly more than the others is taken to be in that language.
constexpr int kNumLangs = 6;
constexpr std::string_view kStopEn[] = {
    "the",  "and",   "is",     "are",   "of",   "to",  "in",    "that", "it",    "you",
    "what", "how",   "for",    "with",  "this", "can", "my",    "be",   "do",    "on",
    "was",  "me",    "please", "your",  "have", "why", "which", "from", "about", "an",
    "will", "would", "should", "there", "if",   "or",  "i"};
constexpr std::string_view kStopEs[] = {
    "el",           "los",          "las",  "que",  "y",          "en",          "un",
    "una",          "por",          "para", "con",  "es",         "qu\xc3\xa9",  "c\xc3\xb3mo",
    "cu\xc3\xa1l",  "del",          "se",   "mi",   "puedes",     "est\xc3\xa1", "hola",
    "al",           "lo",           "como", "pero", "m\xc3\xa1s", "muy",         "tengo",
    "d\xc3\xb3nde", "cu\xc3\xa1nto"};
constexpr std::string_view kStopFr[] = {
    "le",   "les",  "et",     "est",     "des",     "une",         "du",       "je",
    "vous", "pour", "dans",   "pas",     "ce",      "qui",         "avec",     "sur",
    "mon",  "quel", "quelle", "bonjour", "comment", "pourquoi",    "il",       "elle",
    "nous", "au",   "aux",    "sont",    "mais",    "tr\xc3\xa8s", "o\xc3\xb9"};
constexpr std::string_view kStopDe[] = {
    "der",   "die", "das",    "und",        "ist", "nicht", "ich",  "sie",  "wie", "was",
    "mit",   "ein", "eine",   "f\xc3\xbcr", "auf", "den",   "dem",  "zu",   "von", "bitte",
    "warum", "wo",  "kannst", "du",         "mir", "mein",  "sind", "auch", "wir", "wetter"};
constexpr std::string_view kStopPt[] = {
    "o",        "os",         "um",          "uma",  "n\xc3\xa3o", "voc\xc3\xaa",
    "\xc3\xa9", "com",        "do",          "da",   "dos",        "das",
    "em",       "por",        "ol\xc3\xa1",  "qual", "obrigado",   "meu",
    "minha",    "isso",       "como",        "mais", "muito",      "onde",
    "quanto",   "s\xc3\xa3o", "est\xc3\xa1", "pode", "eu"};
constexpr std::string_view kStopIt[] = {
    "il",   "di",  "che", "\xc3\xa8", "per",           "non",    "sono",   "della", "del",
    "gli",  "lo",  "mi",  "ciao",     "perch\xc3\xa9", "cosa",   "questo", "ho",    "hai",
    "come", "una", "nel", "molto",    "dove",          "quanto", "puoi",   "grazie"};

struct WordList {
  const std::string_view* words;
  size_t size;
};
constexpr WordList kStopwords[kNumLangs] = {
    {kStopEn, std::size(kStopEn)}, {kStopEs, std::size(kStopEs)}, {kStopFr, std::size(kStopFr)},
    {kStopDe, std::size(kStopDe)}, {kStopPt, std::size(kStopPt)}, {kStopIt, std::size(kStopIt)}};

bool IsAsciiWordByte(uint8_t b) {
  return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_';
}

// Word bytes of ASCII mapped to their normalised form (lower case, digits as
// '0'); 0 for bytes that are not part of words.
struct NormalizedAscii {
  char map[128];
};
constexpr NormalizedAscii MakeNormalizedAscii() {
  NormalizedAscii t{};
  for (int b = 0; b < 128; ++b) {
    char n = 0;
    if (b >= 'a' && b <= 'z') n = static_cast<char>(b);
    if (b >= 'A' && b <= 'Z') n = static_cast<char>(b + 32);
    if (b >= '0' && b <= '9') n = '0';
    if (b == '_') n = '_';
    t.map[b] = n;
  }
  return t;
}
constexpr NormalizedAscii kNormalized = MakeNormalizedAscii();

bool IsAsciiSymbol(uint8_t b) {
  return (b >= 0x21 && b <= 0x2F) || (b >= 0x3A && b <= 0x40) || (b >= 0x5B && b <= 0x60) ||
         (b >= 0x7B && b <= 0x7E);
}

constexpr bool IsCodeSymbol(uint8_t b) {
  switch (b) {
    case '{':
    case '}':
    case '[':
    case ']':
    case ';':
    case '=':
    case '<':
    case '>':
    case '|':
    case '&':
    case '\\':
    case '$':
    case '#':
    case '@':
      return true;
    default:
      return false;
  }
}

constexpr bool IsMathCodePoint(char32_t cp) {
  switch (cp) {
    case '+':
    case '*':
    case '/':
    case '^':
    case '=':
    case 0xD7:
    case 0xF7:
    case 0xB1:
    case 0x221A:
    case 0x2211:
    case 0x220F:
    case 0x222B:
    case 0x221E:
    case 0x2264:
    case 0x2265:
    case 0x2260:
    case 0x2248:
    case 0x3C0:
    case 0x2202:
    case 0x2206:
    case 0x2208:
    case 0x2200:
    case 0x2203:
    case 0xB2:
    case 0xB3:
      return true;
    default:
      return false;
  }
}

constexpr bool IsEquationOperator(char32_t cp) {
  return cp == '+' || cp == '-' || cp == '*' || cp == '/' || cp == '^' || cp == '=' || cp == 0xD7 ||
         cp == 0xF7 || cp == '<' || cp == '>';
}

// Characters of scripts written without spaces become one-character words.
bool IsUnspacedScript(Script s) {
  return s == Script::kHan || s == Script::kKana || s == Script::kThai;
}

// Counts over one whole message for the structural features.
struct MessageScan {
  int64_t bytes = 0;
  int64_t words = 0;
  int64_t questions = 0;
  int64_t newlines = 0;
  int64_t code_fences = 0;
  int64_t backticks = 0;
  int64_t code_symbols = 0;
  int64_t math_symbols = 0;
  int64_t digits = 0;
  int64_t non_space = 0;
  int64_t code_points = 0;
  int64_t non_ascii = 0;
  int64_t ascii_letters = 0;
  int64_t uppercase = 0;
  int64_t list_lines = 0;
  int64_t indented_lines = 0;
  int64_t nonempty_lines = 0;
  bool equation = false;
  bool url = false;
  bool ends_with_question = false;
  std::array<int64_t, kNumScripts> script_letters{};
};

// Per-byte classes for the ASCII fast path of ScanMessage.
enum : uint16_t {
  kClsSpace = 1,
  kClsDigit = 2,
  kClsLetter = 4,
  kClsUpper = 8,
  kClsCode = 16,
  kClsMath = 32,
  kClsEqOp = 64,
  kClsWord = 128,     // digit, letter, '_'
  kClsEqKeep = 256,   // ' ', '.', ',' keep a pending equation
  kClsSpecial = 512,  // needs the slow path: '\n', '?', '`', ':', 'w', 'W'
};
struct AsciiClasses {
  uint16_t c[128];
};
constexpr AsciiClasses MakeAsciiClasses() {
  AsciiClasses t{};
  for (int b = 0; b < 128; ++b) {
    uint16_t v = 0;
    if (b == ' ' || b == '\t' || b == '\r' || b == '\n') v |= kClsSpace;
    if (b >= '0' && b <= '9') v |= kClsDigit | kClsWord;
    if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) v |= kClsLetter | kClsWord;
    if (b == '_') v |= kClsWord;
    if (b >= 'A' && b <= 'Z') v |= kClsUpper;
    if (IsCodeSymbol(static_cast<uint8_t>(b))) v |= kClsCode;
    if (IsMathCodePoint(static_cast<char32_t>(b))) v |= kClsMath;
    if (IsEquationOperator(static_cast<char32_t>(b))) v |= kClsEqOp;
    if (b == ' ' || b == '.' || b == ',') v |= kClsEqKeep;
    if (b == '\n' || b == '?' || b == '`' || b == ':' || b == 'w' || b == 'W') v |= kClsSpecial;
    if (IsEquationOperator(static_cast<char32_t>(b))) v |= kClsSpecial;
    t.c[b] = v;
  }
  return t;
}
constexpr AsciiClasses kAscii = MakeAsciiClasses();

bool IsEquationFiller(char c) { return c == ' ' || c == '.' || c == ','; }
// True when the last byte before `pos` that is not ' ', '.' or ',' is a digit.
bool DigitBefore(std::string_view text, size_t pos) {
  while (pos > 0 && IsEquationFiller(text[pos - 1])) --pos;
  return pos > 0 && text[pos - 1] >= '0' && text[pos - 1] <= '9';
}
// True when the first byte at or after `pos` that is not ' ', '.' or ',' is a digit.
bool DigitAfter(std::string_view text, size_t pos) {
  while (pos < text.size() && IsEquationFiller(text[pos])) ++pos;
  return pos < text.size() && text[pos] >= '0' && text[pos] <= '9';
}

MessageScan ScanMessage(std::string_view text) {
  MessageScan s;
  s.bytes = static_cast<int64_t>(text.size());
  // Counters live in locals (not in `s`) so the compiler can keep them in
  // registers: stores through `s` could alias the text bytes.
  int64_t words = 0, questions = 0, newlines = 0, code_fences = 0, backticks = 0;
  int64_t code_symbols = 0, math_symbols = 0, digits = 0, non_space = 0, code_points = 0;
  int64_t non_ascii = 0, ascii_letters = 0, uppercase = 0, list_lines = 0, indented = 0;
  int64_t nonempty = 0, latin = 0;
  std::array<int64_t, kNumScripts> letters{};
  bool equation = false, url = false;
  bool in_word = false;
  bool line_start = true;
  int leading_spaces = 0;
  bool line_nonempty = false;
  uint32_t histogram[128] = {};
  const char* data = text.data();
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const uint8_t b0 = static_cast<uint8_t>(data[i]);
    if (b0 < 0x80 && !line_start && !(kAscii.c[b0] & kClsSpecial)) {
      // Fast path: a run of ordinary ASCII bytes in the middle of a line, in
      // an inner loop whose state fits in registers. Per-class counts come
      // from the byte histogram after the loop; the last non-space character
      // is found after the loop too.
      int64_t run_words = 0;
      bool run_in_word = in_word;
      size_t j = i;
      uint8_t b = b0;
      while (true) {
        ++histogram[b];
        const bool word_char = (kAscii.c[b] & kClsWord) != 0;
        run_words += (word_char && !run_in_word) ? 1 : 0;
        run_in_word = word_char;
        if (++j == n) break;
        b = static_cast<uint8_t>(data[j]);
        if (b >= 0x80 || (kAscii.c[b] & kClsSpecial)) break;
      }
      words += run_words;
      in_word = run_in_word;
      i = j;
      continue;
    }
    char32_t cp;
    uint8_t length = 1;
    uint16_t cls;
    Script script;
    if (b0 < 0x80) {
      cp = b0;
      cls = kAscii.c[b0];
      script = (cls & kClsLetter) ? Script::kLatin : Script::kOther;
      ascii_letters += (cls & kClsLetter) ? 1 : 0;
      uppercase += (cls & kClsUpper) ? 1 : 0;
      code_symbols += (cls & kClsCode) ? 1 : 0;
    } else {
      const DecodedChar c = DecodeUtf8At(text, i);
      cp = c.code_point;
      length = c.length;
      ++non_ascii;
      cls = IsMathCodePoint(cp) ? kClsMath : 0;
      if (IsEquationOperator(cp)) cls |= kClsEqOp;
      script = ScriptOf(cp);
      if (script != Script::kOther) cls |= kClsWord;
    }
    ++code_points;
    const bool space = (cls & kClsSpace) != 0;
    if (cp == '\n') {
      ++newlines;
      if (line_nonempty) ++nonempty;
      line_start = true;
      leading_spaces = 0;
      line_nonempty = false;
    } else if (line_start && (cp == ' ' || cp == '\t')) {
      leading_spaces += cp == '\t' ? 2 : 1;
    } else if (line_start && !space) {
      line_start = false;
      line_nonempty = true;
      if (leading_spaces >= 2) ++indented;
      // List markers: "- ", "* ", "• ", "1. ", "1) ".
      const std::string_view rest = text.substr(i);
      if ((cp == '-' || cp == '*' || cp == 0x2022) && rest.size() > length && rest[length] == ' ') {
        ++list_lines;
      } else if (cp >= '0' && cp <= '9') {
        size_t j = 0;
        while (j < rest.size() && j < 3 && rest[j] >= '0' && rest[j] <= '9') ++j;
        if (j + 1 < rest.size() && (rest[j] == '.' || rest[j] == ')') && rest[j + 1] == ' ') {
          ++list_lines;
        }
      }
      if (rest.substr(0, 3) == "```" || rest.substr(0, 3) == "~~~") ++code_fences;
    }
    if (!space) {
      ++non_space;
    }
    if (cp == '?' || cp == 0xFF1F) ++questions;
    if (cp == '`') ++backticks;
    math_symbols += (cls & kClsMath) ? 1 : 0;
    const bool digit = (cls & kClsDigit) != 0;
    digits += digit ? 1 : 0;
    if (script == Script::kLatin) {
      ++latin;
    } else if (script != Script::kOther) {
      ++letters[static_cast<int>(script)];
    }
    const bool word_char = (cls & kClsWord) != 0;
    if (word_char && !in_word) ++words;
    in_word = word_char && !IsUnspacedScript(script);
    // Equation: digit, optional [ .,], operator, optional [ .,], digit.
    if (!equation && (cls & kClsEqOp) && DigitBefore(text, i) && DigitAfter(text, i + length)) {
      equation = true;
    }
    if (cp == ':' && text.substr(i, 3) == "://") url = true;
    if ((cp == 'w' || cp == 'W') && (text.substr(i, 4) == "www." || text.substr(i, 4) == "WWW.")) {
      url = true;
    }
    i += length;
  }
  if (line_nonempty) ++nonempty;
  for (int b = 0; b < 128; ++b) {
    const int64_t count = histogram[b];
    if (count == 0) continue;
    const uint16_t cls = kAscii.c[b];
    code_points += count;
    if (!(cls & kClsSpace)) non_space += count;
    if (cls & kClsDigit) digits += count;
    if (cls & kClsLetter) {
      ascii_letters += count;
      latin += count;
    }
    if (cls & kClsUpper) uppercase += count;
    if (cls & kClsCode) code_symbols += count;
    if (cls & kClsMath) math_symbols += count;
  }
  letters[static_cast<int>(Script::kLatin)] += latin;
  s.words = words;
  s.questions = questions;
  s.newlines = newlines;
  s.code_fences = code_fences;
  s.backticks = backticks;
  s.code_symbols = code_symbols;
  s.math_symbols = math_symbols;
  s.digits = digits;
  s.non_space = non_space;
  s.code_points = code_points;
  s.non_ascii = non_ascii;
  s.ascii_letters = ascii_letters;
  s.uppercase = uppercase;
  s.list_lines = list_lines;
  s.indented_lines = indented;
  s.nonempty_lines = nonempty;
  s.equation = equation;
  s.url = url;
  s.script_letters = letters;
  // Last non-space character: only ASCII whitespace counts as space here.
  size_t end = n;
  while (end > 0 && (data[end - 1] == ' ' || data[end - 1] == '\t' || data[end - 1] == '\r' ||
                     data[end - 1] == '\n')) {
    --end;
  }
  s.ends_with_question =
      (end > 0 && data[end - 1] == '?') || (end >= 3 && text.substr(end - 3, 3) == "\xEF\xBC\x9F");
  return s;
}

// Sink of the single-pass scorer: sums each family's rows (its message weight is
// applied once, in Total()) and records occurrences (with a copy of the row) for reasons.
class ScoringSink {
 public:
  // Eight floats; GCC splits it into two SSE registers without AVX.
  typedef float Lanes __attribute__((vector_size(32)));

  ScoringSink(const float* rows, ScoredRequest* out) : rows_(rows), out_(out) {
    for (Lanes& t : totals_) t = Lanes{};
  }
  void Add(uint32_t index, float weight, const FeatureOrigin& origin) {
    Lanes row;
    std::memcpy(&row, rows_ + size_t{index} * ScoredRequest::kColumns, sizeof(row));
    const int family = FamilyOf(origin);
    totals_[family] += row;
    family_weight_[family] = weight;
    // Character n-grams score but are not reported as reasons ("chars:^wea"
    // explains little to a person), which keeps this hot path short.
    if (origin.kind == FeatureOrigin::kChars) return;
    std::vector<Occurrence>& occurrences = out_->occurrences;
    occurrences.emplace_back();
    Occurrence& occ = occurrences.back();
    std::memcpy(occ.row.data(), &row, sizeof(row));
    occ.index = index;
    occ.weight = weight;
    // Field by field: a whole-struct copy of an origin just built on the
    // stack is compiled into overlapping loads that defeat store forwarding.
    occ.origin.kind = origin.kind;
    occ.origin.at_word_start = origin.at_word_start;
    occ.origin.at_word_end = origin.at_word_end;
    occ.origin.length = origin.length;
    occ.origin.offset = origin.offset;
    occ.origin.context = origin.context;
  }
  // A character n-gram: scored, never named, so it needs no origin.
  static constexpr bool kNeedsCharOrigins = false;
  void AddChars(uint32_t index, float weight, int family) {
    Lanes row;
    std::memcpy(&row, rows_ + size_t{index} * ScoredRequest::kColumns, sizeof(row));
    totals_[family] += row;
    family_weight_[family] = weight;
  }
  float Total(int family, int column) const {
    return totals_[family][column] * family_weight_[family];
  }

 private:
  Lanes totals_[kNumFamilies];
  // The message weight of each family's occurrences (the same for all of
  // them: 1 for the focus turn, context_weight for the others), applied in
  // Total(): multiplying every row by a scalar went through the stack.
  std::array<float, kNumFamilies> family_weight_{};
  const float* rows_;
  ScoredRequest* out_;
};

// Sink of Extract(): merges occurrences by index (open addressing over a
// growing table) into a FeatureVector.
class MergingSink {
 public:
  MergingSink(FeatureVector* fv, size_t expected) : fv_(fv) {
    size_t capacity = 64;
    while (capacity < expected * 2) capacity <<= 1;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
  }

  static constexpr bool kNeedsCharOrigins = true;
  // Occurrences merge by (index, family): each family is scaled by its own
  // count, as the scorer does, so a hash collision between two families
  // (a word and a character n-gram, a focus and a context word) scores the
  // same in training and in serving.
  void Add(uint32_t index, float value, const FeatureOrigin& origin) {
    const uint32_t key = (index << 3) | static_cast<uint32_t>(FamilyOf(origin));
    size_t pos = Hash(key) & mask_;
    while (true) {
      Slot& slot = slots_[pos];
      if (slot.key_plus_one == 0) {
        slot.key_plus_one = key + 1;
        slot.position = static_cast<uint32_t>(fv_->features.size());
        fv_->features.push_back({index, value});
        fv_->origins.push_back(origin);
        if (fv_->features.size() * 2 > slots_.size()) Grow();
        return;
      }
      if (slot.key_plus_one == key + 1) {
        fv_->features[slot.position].value += value;
        return;
      }
      pos = (pos + 1) & mask_;
    }
  }

 private:
  struct Slot {
    uint32_t key_plus_one = 0;
    uint32_t position = 0;
  };
  static size_t Hash(uint32_t index) { return (index * 0x9E3779B1u) >> 7; }
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.key_plus_one == 0) continue;
      size_t pos = Hash(s.key_plus_one - 1) & mask_;
      while (slots_[pos].key_plus_one != 0) pos = (pos + 1) & mask_;
      slots_[pos] = s;
    }
  }
  FeatureVector* fv_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// Normalises text segments and emits their hashed features into a sink.
template <typename Sink>
class HashedEmitter {
 public:
  HashedEmitter(const FeatureConfig& config, const FeatureExtractor* extractor,
                uint8_t (FeatureExtractor::*stopwords)(uint64_t) const, std::string* text,
                Sink* sink)
      : config_(config),
        extractor_(extractor),
        stopwords_(stopwords),
        text_(text),
        sink_(sink),
        shift_(64 - static_cast<int>(config.hash_bits)) {}

  // Normalises `segment` into the text buffer and emits its features.
  void Process(std::string_view segment, float weight, bool count_language) {
    weight_ = weight;
    context_ = !count_language;
    count_language_ = count_language;
    has_prev_word_ = false;
    // Every input byte gives at most one output byte (+1 for the newline), so
    // the buffer is sized once and written through a pointer.
    std::string& text = *text_;
    const size_t base = text.size();
    text.resize(base + segment.size() + 1);
    buf_ = text.data();
    len_ = base;
    size_t word_start = len_;
    bool in_word = false;
    for (size_t i = 0; i < segment.size();) {
      const uint8_t b = static_cast<uint8_t>(segment[i]);
      if (b < 0x80) {
        ++i;
        const char n = kNormalized.map[b];
        if (n != 0) {  // a word byte: lower-cased, digits as '0'
          if (!in_word) {
            word_start = len_;
            in_word = true;
          }
          // The rest of the word's ASCII bytes in a tight loop on locals
          // (stores through buf_ could alias the members, which would
          // otherwise be reloaded and stored for every byte).
          const char* in = segment.data();
          const size_t end = segment.size();
          char* out = buf_ + len_;
          *out++ = n;
          while (i < end) {
            const uint8_t next = static_cast<uint8_t>(in[i]);
            const char normalized = next < 0x80 ? kNormalized.map[next] : 0;
            if (normalized == 0) break;
            *out++ = normalized;
            ++i;
          }
          len_ = static_cast<size_t>(out - buf_);
          continue;
        }
        if (in_word) EndWord(word_start, &in_word);
        if (IsAsciiSymbol(b)) {
          const uint32_t offset = static_cast<uint32_t>(len_);
          buf_[len_++] = static_cast<char>(b);
          Emit(kNsSymbol, b, FeatureOrigin{FeatureOrigin::kSymbol, false, false, 1, offset});
        } else {
          buf_[len_++] = ' ';
        }
        continue;
      }
      const DecodedChar c = DecodeUtf8At(segment, i);
      const char* bytes = segment.data() + i;
      i += c.length;
      const Script script = c.valid ? ScriptOf(c.code_point) : Script::kOther;
      const bool letter = c.valid && !IsNonAsciiSeparator(c.code_point) &&
                          (script != Script::kOther || IsLetterLike(c.code_point));
      if (!letter) {  // invalid bytes, punctuation, symbols, emoji
        if (in_word) EndWord(word_start, &in_word);
        buf_[len_++] = ' ';
        continue;
      }
      if (IsUnspacedScript(script)) {
        if (in_word) EndWord(word_start, &in_word);
        word_start = len_;
        std::memcpy(buf_ + len_, bytes, c.length);
        len_ += c.length;
        EndWord(word_start, &in_word);
        continue;
      }
      if (!in_word) {
        word_start = len_;
        in_word = true;
      }
      std::memcpy(buf_ + len_, bytes, c.length);
      len_ += c.length;
    }
    if (in_word) EndWord(word_start, &in_word);
    buf_[len_++] = '\n';
    text.resize(len_);
  }

  std::array<int64_t, kNumLangs> language_hits{};
  // Occurrences per family.
  const std::array<int64_t, kNumFamilies>& family_counts() const { return counts_; }

 private:
  static bool IsLetterLike(char32_t cp) {
    // Scripts not listed in Script (Armenian, Georgian, Ethiopic, ...) and
    // combining marks: part of words. Symbols and emoji blocks: not.
    return (cp >= 0x250 && cp < 0x2000) || (cp >= 0xA000 && cp < 0xD800) ||
           (cp >= 0x10000 && cp < 0x1F000);
  }

  void Emit(uint64_t ns, uint64_t h, FeatureOrigin origin) {
    const uint32_t index = static_cast<uint32_t>(Mix(h ^ ns ^ config_.seed) >> shift_);
    origin.context = context_;
    ++counts_[FamilyOf(origin)];
    sink_->Add(index, weight_, origin);
  }

  void EndWord(size_t start, bool* in_word) {
    *in_word = false;
    const std::string_view word(buf_ + start, len_ - start);
    const size_t length = std::min<size_t>(word.size(), 0xFFFF);
    const uint64_t word_hash = Fnv1a(word);
    Emit(kNsWord, word_hash,
         FeatureOrigin{FeatureOrigin::kWord, false, false, static_cast<uint16_t>(length),
                       static_cast<uint32_t>(start)});
    if (config_.word_bigrams && has_prev_word_) {
      const size_t span = std::min<size_t>(len_ - prev_word_start_, 0xFFFF);
      Emit(kNsBigram, prev_word_hash_ * kFnvPrime + word_hash,
           FeatureOrigin{FeatureOrigin::kBigram, false, false, static_cast<uint16_t>(span),
                         static_cast<uint32_t>(prev_word_start_)});
    }
    if (config_.char_ngram_min > 0) EmitCharNgrams(start, word);
    if (count_language_) {
      const uint8_t langs = (extractor_->*stopwords_)(word_hash);
      for (int lang = 0; langs != 0 && lang < kNumLangs; ++lang) {
        if (langs & (1u << lang)) ++language_hits[lang];
      }
    }
    prev_word_hash_ = word_hash;
    prev_word_start_ = start;
    has_prev_word_ = true;
  }

  // Character n-grams of "^word$" (bytes), packed into one integer each.
  void EmitCharNgrams(size_t start, std::string_view word) {
    const size_t padded = word.size() + 2;
    // The padded word in a local buffer; very long tokens (URLs, base64) are
    // handled piecewise through byte_at.
    uint8_t local[66];
    const bool fits = padded <= sizeof(local);
    if (fits) {
      local[0] = '^';
      std::memcpy(local + 1, word.data(), word.size());
      local[padded - 1] = '$';
    }
    const auto byte_at = [&](size_t p) -> uint64_t {
      if (fits) return local[p];
      if (p == 0) return '^';
      if (p == padded - 1) return '$';
      return static_cast<uint8_t>(word[p - 1]);
    };
    for (uint32_t n = config_.char_ngram_min; n <= config_.char_ngram_max; ++n) {
      if (padded < n) break;
      // A word shorter than the n-gram is covered by its word feature.
      if (padded == n && n > config_.char_ngram_min) break;
      uint64_t packed = 0;
      for (size_t p = 0; p < n; ++p) packed = (packed << 8) | byte_at(p);
      const uint64_t top = n >= 8 ? ~0ULL : ((1ULL << (8 * n)) - 1);
      const size_t last_position = padded - n;
      if constexpr (!Sink::kNeedsCharOrigins) {
        // The serving path: the same indices as Emit() below, without
        // building origins the sink would drop (this loop is most of the
        // hashed features of a prompt).
        const int family = FeatureOrigin::kChars + (context_ ? 4 : 0);
        const uint64_t salt = kNsChars ^ config_.seed;
        counts_[family] += static_cast<int64_t>(last_position + 1);
        for (size_t p = 0;; ++p) {
          sink_->AddChars(static_cast<uint32_t>(Mix((packed * 31 + n) ^ salt) >> shift_), weight_,
                          family);
          if (p == last_position) break;
          packed = ((packed << 8) | (fits ? uint64_t{local[p + n]} : byte_at(p + n))) & top;
        }
        continue;
      }
      for (size_t p = 0;; ++p) {
        const bool at_start = p == 0;
        const bool at_end = p == last_position;
        const size_t first = at_start ? 0 : p - 1;  // offset in word
        const size_t last = at_end ? word.size() : p + n - 1;
        Emit(kNsChars, packed * 31 + n,
             FeatureOrigin{FeatureOrigin::kChars, at_start, at_end,
                           static_cast<uint16_t>(std::min<size_t>(last - first, 0xFFFF)),
                           static_cast<uint32_t>(start + first)});
        if (at_end) break;
        packed = ((packed << 8) | (fits ? uint64_t{local[p + n]} : byte_at(p + n))) & top;
      }
    }
  }

  const FeatureConfig& config_;
  const FeatureExtractor* extractor_;
  uint8_t (FeatureExtractor::*stopwords_)(uint64_t) const;
  std::string* text_;
  char* buf_ = nullptr;  // text_->data() while Process runs
  size_t len_ = 0;       // bytes written so far
  Sink* sink_;
  int shift_;
  float weight_ = 1;
  std::array<int64_t, kNumFamilies> counts_{};
  bool context_ = false;  // the segment being processed is not the focus turn
  bool count_language_ = false;
  uint64_t prev_word_hash_ = 0;
  size_t prev_word_start_ = 0;
  bool has_prev_word_ = false;
};

float Clamp01(double v) { return static_cast<float>(std::min(1.0, std::max(0.0, v))); }
float LogScale(double v, double divisor) { return static_cast<float>(std::log1p(v) / divisor); }

}  // namespace

std::string_view StructuralName(uint32_t index) {
  return index < kNumStructural ? kStructuralNames[index] : std::string_view("unknown");
}

std::vector<std::string> StructuralNames() {
  return std::vector<std::string>(std::begin(kStructuralNames), std::end(kStructuralNames));
}

absl::Status FeatureConfig::Validate() const {
  if (hash_bits < 10 || hash_bits > 24) {
    return absl::InvalidArgumentError(absl::StrCat("hash_bits must be 10..24, got ", hash_bits));
  }
  if (char_ngram_min != 0 &&
      (char_ngram_min < 2 || char_ngram_max > 7 || char_ngram_min > char_ngram_max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("char n-gram sizes must satisfy 2 <= min <= max <= 7 (or min 0), got ",
                     char_ngram_min, "..", char_ngram_max));
  }
  if (!(context_weight >= 0 && context_weight <= 1)) {
    return absl::InvalidArgumentError("context_weight must be in [0, 1]");
  }
  if (head_bytes + tail_bytes == 0 || head_bytes > (1u << 24) || tail_bytes > (1u << 24)) {
    return absl::InvalidArgumentError("head_bytes + tail_bytes must be in (0, 32 MiB]");
  }
  return absl::OkStatus();
}

int64_t ApproxRequestTokens(const ClassifyInput& input) {
  int64_t tokens = 3;
  for (const MessageView& m : input.messages) tokens += 4 + EstimateTokens(m.content);
  for (const ToolView& t : input.tools) {
    tokens += 8 + EstimateTokens(t.name) + EstimateTokens(t.description) +
              EstimateTokens(t.parameters_json_schema);
  }
  return tokens;
}

FeatureExtractor::FeatureExtractor(const FeatureConfig& config) : config_(config) {
  size_t entries = 0;
  for (const WordList& list : kStopwords) entries += list.size;
  size_t capacity = 16;
  while (capacity < entries * 3) capacity <<= 1;
  stopwords_.assign(capacity, {0, 0});
  for (int lang = 0; lang < kNumLangs; ++lang) {
    for (size_t i = 0; i < kStopwords[lang].size; ++i) {
      const uint64_t h = Fnv1a(kStopwords[lang].words[i]);
      size_t pos = Mix(h) & (capacity - 1);
      while (stopwords_[pos].second != 0 && stopwords_[pos].first != h) {
        pos = (pos + 1) & (capacity - 1);
      }
      stopwords_[pos].first = h;
      stopwords_[pos].second |= static_cast<uint8_t>(1u << lang);
    }
  }
}

uint8_t FeatureExtractor::StopwordLanguages(uint64_t word_hash) const {
  const size_t mask = stopwords_.size() - 1;
  for (size_t pos = Mix(word_hash) & mask;; pos = (pos + 1) & mask) {
    if (stopwords_[pos].second == 0) return 0;
    if (stopwords_[pos].first == word_hash) return stopwords_[pos].second;
  }
}

FeatureVector FeatureExtractor::ExtractText(std::string_view text) const {
  ClassifyInput input;
  input.messages.push_back(MessageView{Role::kUser, text, 0});
  return Extract(input);
}

FeatureVector FeatureExtractor::Extract(const ClassifyInput& input) const {
  FeatureVector fv;
  size_t budget = 0;
  const size_t per_message = size_t{config_.head_bytes} + config_.tail_bytes;
  for (const MessageView& m : input.messages) budget += std::min(m.content.size(), per_message);
  const size_t grams_per_byte =
      config_.char_ngram_min == 0 ? 0 : config_.char_ngram_max - config_.char_ngram_min + 1;
  MergingSink sink(
      &fv, std::min<size_t>(budget * (grams_per_byte + 1) / 2 + 64, size_t{config_.num_buckets()}));
  std::array<int64_t, kNumFamilies> counts{};
  std::vector<Feature> structural;
  Run(input, &sink, &fv.text, &fv.stats, &counts, &structural);
  for (size_t i = 0; i < fv.features.size(); ++i) {
    const int64_t n = counts[FamilyOf(fv.origins[i])];
    fv.features[i].value =
        static_cast<float>(fv.features[i].value / std::sqrt(static_cast<double>(n)));
  }
  for (const Feature& f : structural) {
    fv.features.push_back(f);
    fv.origins.push_back(FeatureOrigin{FeatureOrigin::kStructural, false, false, 0,
                                       f.index - config_.num_buckets()});
  }
  return fv;
}

void FeatureExtractor::Score(const ClassifyInput& input, const float* rows,
                             ScoredRequest* out) const {
  out->totals.fill(0);
  out->occurrences.clear();
  out->structural.clear();
  out->text.clear();
  out->stats = TextStats{};
  size_t budget = 0;
  const size_t per_message = size_t{config_.head_bytes} + config_.tail_bytes;
  for (const MessageView& m : input.messages) budget += std::min(m.content.size(), per_message);
  out->occurrences.reserve(std::min<size_t>(budget, 4096));
  ScoringSink sink(rows, out);
  std::array<int64_t, kNumFamilies> counts{};
  Run(input, &sink, &out->text, &out->stats, &counts, &out->structural);
  for (int family = 0; family < kNumFamilies; ++family) {
    const float scale =
        counts[family] > 0
            ? static_cast<float>(1.0 / std::sqrt(static_cast<double>(counts[family])))
            : 0;
    out->family_scale[family] = scale;
    for (int c = 0; c < ScoredRequest::kColumns; ++c) {
      out->totals[c] += sink.Total(family, c) * scale;
    }
  }
  for (const Feature& f : out->structural) {
    const float* row = rows + size_t{f.index} * ScoredRequest::kColumns;
    for (int c = 0; c < ScoredRequest::kColumns; ++c) out->totals[c] += row[c] * f.value;
  }
}

template <typename Sink>
void FeatureExtractor::Run(const ClassifyInput& input, Sink* sink, std::string* text,
                           TextStats* stats, std::array<int64_t, kNumFamilies>* family_counts,
                           std::vector<Feature>* structural) const {
  const auto& messages = input.messages;
  // The focus is the last user turn (or, without one, the last non-empty turn).
  int focus = -1;
  for (int i = static_cast<int>(messages.size()) - 1; i >= 0 && focus < 0; --i) {
    const Role r = messages[i].role;
    if (r == Role::kUser || r == Role::kUnspecified) focus = i;
  }
  for (int i = static_cast<int>(messages.size()) - 1; i >= 0 && focus < 0; --i) {
    if (!messages[i].content.empty()) focus = i;
  }

  const size_t per_message = size_t{config_.head_bytes} + config_.tail_bytes;
  HashedEmitter<Sink> emitter(config_, this, &FeatureExtractor::StopwordLanguages, text, sink);
  int64_t context_bytes = 0;
  bool has_system = false;
  bool has_tool_calls = false;
  for (int i = 0; i < static_cast<int>(messages.size()); ++i) {
    const MessageView& m = messages[i];
    stats->total_bytes += static_cast<int64_t>(m.content.size());
    if (m.role == Role::kUser || m.role == Role::kUnspecified) ++stats->user_turns;
    if (m.role == Role::kSystem) has_system = true;
    if (m.role == Role::kTool || m.tool_call_count > 0) has_tool_calls = true;
    if (i != focus) context_bytes += static_cast<int64_t>(m.content.size());
    const bool text_turn =
        m.role == Role::kUser || m.role == Role::kUnspecified || m.role == Role::kSystem;
    if (i != focus && !text_turn) continue;
    const float weight = i == focus ? 1.0f : config_.context_weight;
    if (weight <= 0) continue;
    const std::string_view content = m.content;
    if (content.size() <= per_message) {
      emitter.Process(content, weight, i == focus);
    } else {
      emitter.Process(content.substr(0, config_.head_bytes), weight, i == focus);
      emitter.Process(content.substr(content.size() - config_.tail_bytes), weight, i == focus);
    }
  }
  stats->approx_tokens = ApproxRequestTokens(input);
  *family_counts = emitter.family_counts();

  // Structural features.
  const MessageScan s = focus >= 0 ? ScanMessage(messages[focus].content) : MessageScan{};
  stats->focus_bytes = s.bytes;
  stats->focus_words = s.words;
  stats->question_marks = s.questions;
  stats->newlines = s.newlines;
  stats->code_fences = s.code_fences;
  stats->script_letters = s.script_letters;

  const uint32_t base = config_.num_buckets();
  const auto add = [&](Structural f, float value) {
    if (value != 0) structural->push_back({base + static_cast<uint32_t>(f), value});
  };
  add(Structural::kBias, 1.0f);
  add(Structural::kLenLog, LogScale(s.bytes, 8));
  add(Structural::kTotalLenLog, LogScale(stats->total_bytes, 10));
  add(Structural::kWordsLog, LogScale(s.words, 6));
  add(Structural::kCodeFence, s.code_fences > 0 ? 1.0f : 0.0f);
  add(Structural::kInlineCode, s.backticks - 3 * s.code_fences >= 2 ? 1.0f : 0.0f);
  add(Structural::kCodeSymbols,
      s.non_space > 0 ? Clamp01(5.0 * s.code_symbols / static_cast<double>(s.non_space)) : 0);
  add(Structural::kIndentedLines,
      s.nonempty_lines >= 3 ? static_cast<float>(s.indented_lines) / s.nonempty_lines : 0);
  add(Structural::kMathSymbols, Clamp01(std::log1p(s.math_symbols) / 3));
  add(Structural::kDigitRatio, s.non_space > 0 ? static_cast<float>(s.digits) / s.non_space : 0);
  add(Structural::kEquation, s.equation ? 1.0f : 0.0f);
  add(Structural::kQuestionsLog, LogScale(s.questions, 2));
  add(Structural::kMultiQuestion, s.questions > 1 ? 1.0f : 0.0f);
  add(Structural::kEndsWithQuestion, s.ends_with_question ? 1.0f : 0.0f);
  add(Structural::kListMarkers, LogScale(s.list_lines, 2));
  add(Structural::kNewlinesLog, LogScale(s.newlines, 4));
  add(Structural::kTurnsLog, LogScale(std::max<int64_t>(0, stats->user_turns - 1), 2));
  add(Structural::kMessagesLog, LogScale(static_cast<double>(messages.size()), 2));
  add(Structural::kHasSystem, has_system ? 1.0f : 0.0f);
  add(Structural::kHasToolCalls, has_tool_calls ? 1.0f : 0.0f);
  add(Structural::kToolsOffered, input.tools.empty() ? 0.0f : 1.0f);
  add(Structural::kToolsCountLog, LogScale(static_cast<double>(input.tools.size()), 2));
  add(Structural::kUrl, s.url ? 1.0f : 0.0f);
  add(Structural::kNonAsciiRatio,
      s.code_points > 0 ? static_cast<float>(s.non_ascii) / s.code_points : 0);
  add(Structural::kUppercaseRatio,
      s.ascii_letters >= 5 ? static_cast<float>(s.uppercase) / s.ascii_letters : 0);
  add(Structural::kContextLenLog, LogScale(context_bytes, 10));
  int64_t letters = 0;
  for (int k = 1; k < kNumScripts; ++k) letters += s.script_letters[k];
  for (int k = 1; k < kNumScripts && letters > 0; ++k) {
    add(static_cast<Structural>(static_cast<uint32_t>(Structural::kScriptLatin) + k - 1),
        static_cast<float>(s.script_letters[k]) / letters);
  }
  // Language: only for mostly-Latin text with a clear stop-word winner.
  if (letters > 0 && s.script_letters[static_cast<int>(Script::kLatin)] * 2 > letters) {
    int best = -1;
    int64_t best_hits = 0;
    int64_t second_hits = 0;
    for (int lang = 0; lang < kNumLangs; ++lang) {
      const int64_t hits = emitter.language_hits[lang];
      if (hits > best_hits) {
        second_hits = best_hits;
        best_hits = hits;
        best = lang;
      } else if (hits > second_hits) {
        second_hits = hits;
      }
    }
    if (best >= 0 && best_hits >= 2 && best_hits > second_hits) {
      add(static_cast<Structural>(static_cast<uint32_t>(Structural::kLangEn) + best), 1.0f);
    }
  }
}

std::string FeatureExtractor::FeatureName(const FeatureVector& fv, size_t i) const {
  if (i >= fv.features.size()) return "unknown";
  return OriginName(fv.origins[i], fv.text);
}

std::string FeatureExtractor::OriginName(const FeatureOrigin& o, std::string_view text) const {
  if (o.kind == FeatureOrigin::kStructural) return std::string(StructuralName(o.offset));
  std::string_view span;
  if (o.offset <= text.size()) span = text.substr(o.offset, o.length);
  // Repair a name cut inside a multi-byte character (char n-grams are bytes).
  std::string clean = SanitizeUtf8(span);
  switch (o.kind) {
    case FeatureOrigin::kWord:
      return absl::StrCat("word:", clean);
    case FeatureOrigin::kBigram: {
      // The span covers both words and whatever separated them.
      std::string collapsed;
      bool gap = false;
      for (const char c : clean) {
        const uint8_t b = static_cast<uint8_t>(c);
        if (b < 0x80 && !IsAsciiWordByte(b)) {
          gap = true;
          continue;
        }
        if (gap && !collapsed.empty()) collapsed.push_back(' ');
        gap = false;
        collapsed.push_back(c);
      }
      return absl::StrCat("bigram:", collapsed);
    }
    case FeatureOrigin::kChars:
      return absl::StrCat("chars:", o.at_word_start ? "^" : "", clean, o.at_word_end ? "$" : "");
    case FeatureOrigin::kSymbol:
      return absl::StrCat("symbol:", clean);
    case FeatureOrigin::kStructural:
      break;
  }
  return "unknown";
}

}  // namespace tiermesh::classifier
