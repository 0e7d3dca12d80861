// UTF-8 repair: checked against an independent reference decoder (written from the Unicode
// definitions of well-formed sequences, not from the implementation's lead-byte table) over
// exhaustive and boundary-value inputs, and for independence from chunking at every split point.
#include "services/common/text/utf8.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tiermesh::text {
namespace {

const std::string kFffd(kReplacementCharacter);

// Decodes the well-formed character of exactly `len` bytes at the start of `s`, if there is one:
// the bit pattern must match, the code point must need exactly `len` bytes (no overlong form),
// must not be a surrogate and must not exceed U+10FFFF.
bool IsWellFormed(const std::string& s, size_t len) {
  if (s.size() < len) return false;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  uint32_t cp;
  switch (len) {
    case 1:
      return byte(0) < 0x80;
    case 2:
      if ((byte(0) & 0xE0) != 0xC0) return false;
      cp = byte(0) & 0x1F;
      break;
    case 3:
      if ((byte(0) & 0xF0) != 0xE0) return false;
      cp = byte(0) & 0x0F;
      break;
    case 4:
      if ((byte(0) & 0xF8) != 0xF0) return false;
      cp = byte(0) & 0x07;
      break;
    default:
      return false;
  }
  for (size_t i = 1; i < len; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return false;
    cp = (cp << 6) | (byte(i) & 0x3F);
  }
  const uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len]) return false;
  if (cp >= 0xD800 && cp <= 0xDFFF) return false;
  return cp <= 0x10FFFF;
}

// Whether `prefix` can be extended into a well-formed character. Whether a sequence is
// well-formed is decided by its first two bytes once the rest are continuation bytes, so trying
// every continuation byte in the first missing position (0x80 in the others) is exhaustive.
bool IsProperPrefixUncached(const std::string& prefix) {
  for (size_t len = prefix.size() + 1; len <= 4; ++len) {
    for (int first = 0x80; first <= 0xBF; ++first) {
      std::string candidate = prefix;
      candidate.push_back(static_cast<char>(first));
      while (candidate.size() < len) candidate.push_back('\x80');
      if (IsWellFormed(candidate, len)) return true;
    }
  }
  return false;
}

// Unicode's "U+FFFD substitution of maximal subparts", by definition. Prefixes are at most 3
// bytes, so memoizing IsProperPrefix keeps the exhaustive tests fast.
class ReferenceDecoder {
 public:
  std::string Repair(const std::string& s) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      bool matched = false;
      for (size_t len = 1; len <= 4 && i + len <= s.size(); ++len) {
        if (IsWellFormed(s.substr(i, len), len)) {
          out += s.substr(i, len);
          i += len;
          matched = true;
          break;
        }
      }
      if (matched) continue;
      // The maximal subpart: the longest proper prefix of a well-formed character (at least 1).
      size_t sub = 1;
      for (size_t len = 3; len >= 1; --len) {
        if (i + len <= s.size() && IsProperPrefix(s.substr(i, len))) {
          sub = len;
          break;
        }
      }
      out += kFffd;
      i += sub;
    }
    return out;
  }

 private:
  bool IsProperPrefix(const std::string& prefix) {
    auto it = cache_.find(prefix);
    if (it == cache_.end()) it = cache_.emplace(prefix, IsProperPrefixUncached(prefix)).first;
    return it->second;
  }
  std::map<std::string, bool> cache_;
};

std::string Reference(const std::string& s) { return ReferenceDecoder().Repair(s); }

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

TEST(Utf8RepairTest, TableDrivenExamples) {
  struct Case {
    const char* name;
    std::string input;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"empty", "", ""},
      {"ascii", "hello", "hello"},
      {"two-byte", "\xC3\xA9", "\xC3\xA9"},
      {"three-byte", "\xE2\x82\xAC", "\xE2\x82\xAC"},
      {"four-byte", "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
      {"existing U+FFFD is kept", kFffd, kFffd},
      {"stray continuation", "a\x80z", "a" + kFffd + "z"},
      {"two stray continuations", "\x80\xBF", kFffd + kFffd},
      {"C0 overlong lead", "\xC0\xAF", kFffd + kFffd},
      {"E0 overlong", "\xE0\x80\xAF", kFffd + kFffd + kFffd},
      {"surrogate", "\xED\xA0\x80", kFffd + kFffd + kFffd},
      {"above U+10FFFF", "\xF4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},
      {"F5 lead", "\xF5\x80", kFffd + kFffd},
      {"FF", "\xFF", kFffd},
      {"truncated three-byte then ascii", "\xE2\x82z", kFffd + "z"},
      {"truncated four-byte then ascii", "\xF0\x9F\x98z", kFffd + "z"},
      {"truncated at end", "ok\xF0\x9F", "ok" + kFffd},
      {"lead then lead", "\xC3\xC3\xA9", kFffd + "\xC3\xA9"},
      // The example of the Unicode Standard, chapter 3, table 3-8.
      {"unicode table 3-8",
       Bytes({0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64}),
       "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d"},
      {"NUL is a character", std::string("a\0b", 3), std::string("a\0b", 3)},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RepairUtf8(c.input), c.expected) << c.name;
    EXPECT_EQ(Reference(c.input), c.expected) << c.name << " (reference)";
    EXPECT_EQ(IsValidUtf8(c.input), c.input == c.expected) << c.name;
  }
}

// Every 1- and 2-byte input, and 3- and 4-byte inputs built from every lead byte and boundary
// values, agree with the reference.
TEST(Utf8RepairTest, ExhaustiveShortInputsMatchTheReference) {
  ReferenceDecoder reference;
  for (int a = 0; a < 256; ++a) {
    const std::string one = Bytes({a});
    ASSERT_EQ(RepairUtf8(one), reference.Repair(one)) << a;
    for (int b = 0; b < 256; ++b) {
      const std::string two = Bytes({a, b});
      ASSERT_EQ(RepairUtf8(two), reference.Repair(two)) << a << " " << b;
    }
  }
  // Three bytes: every lead byte with every second and third byte would be 16M reference calls;
  // all leads with boundary-value continuations cover every branch of the table.
  const std::vector<int> interesting = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90,
                                        0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
                                        0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  for (int a = 0; a < 256; ++a) {
    for (int b : interesting) {
      for (int c : interesting) {
        const std::string three = Bytes({a, b, c});
        ASSERT_EQ(RepairUtf8(three), reference.Repair(three)) << a << " " << b << " " << c;
        if (a < 0xE0) continue;  // a fourth byte only matters after a 3- or 4-byte lead
        for (int d : {0x41, 0x80, 0x8F, 0x90, 0xBF, 0xC0}) {
          const std::string four = Bytes({a, b, c, d});
          ASSERT_EQ(RepairUtf8(four), reference.Repair(four))
              << a << " " << b << " " << c << " " << d;
        }
      }
    }
  }
}

// Every code point round-trips unchanged, and stays intact when split at any byte.
TEST(Utf8RepairTest, EveryScalarValueSurvivesEverySplit) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string enc;
    if (cp < 0x80) {
      enc = Bytes({static_cast<int>(cp)});
    } else if (cp < 0x800) {
      enc = Bytes({0xC0 | static_cast<int>(cp >> 6), 0x80 | static_cast<int>(cp & 0x3F)});
    } else if (cp < 0x10000) {
      enc = Bytes({0xE0 | static_cast<int>(cp >> 12), 0x80 | static_cast<int>((cp >> 6) & 0x3F),
                   0x80 | static_cast<int>(cp & 0x3F)});
    } else {
      enc = Bytes({0xF0 | static_cast<int>(cp >> 18), 0x80 | static_cast<int>((cp >> 12) & 0x3F),
                   0x80 | static_cast<int>((cp >> 6) & 0x3F), 0x80 | static_cast<int>(cp & 0x3F)});
    }
    ASSERT_EQ(RepairUtf8(enc), enc) << cp;
    for (size_t split = 0; split <= enc.size(); ++split) {
      Utf8StreamRepairer r;
      std::string out = r.Feed(enc.substr(0, split));
      out += r.Feed(enc.substr(split));
      out += r.Finish();
      ASSERT_EQ(out, enc) << cp << " split " << split;
      ASSERT_EQ(r.replacements(), 0) << cp;
    }
  }
}

std::vector<std::string> Corpus() {
  return {
      "plain ascii text",
      "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD\xE6\x96\x87",
      Bytes({0x61, 0xF1, 0x80, 0x80, 0xE1, 0x80, 0xC2, 0x62, 0x80, 0x63, 0x80, 0xBF, 0x64}),
      "\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98",  // ends inside a character
      "\xE0\x80\xAF\xED\xA0\x80\xF4\x90\x80\x80\xC0\xC1\xF5\xFF",
      "x\xC3\xC3\xA9y\xE2\x82\xE2\x82\xACz",
      "\xEF\xBF\xBD\xEF\xBF",  // U+FFFD then an incomplete U+FFFD
  };
}

// Splitting the input anywhere, into two or three pieces or single bytes, never changes the
// output, and every piece of output is valid UTF-8 on its own.
TEST(Utf8RepairTest, OutputDoesNotDependOnChunking) {
  for (const std::string& input : Corpus()) {
    const std::string expected = RepairUtf8(input);
    ASSERT_EQ(expected, Reference(input));
    ASSERT_TRUE(IsValidUtf8(expected));
    for (size_t i = 0; i <= input.size(); ++i) {
      for (size_t j = i; j <= input.size(); ++j) {
        Utf8StreamRepairer r;
        std::string out;
        for (const std::string& piece :
             {input.substr(0, i), input.substr(i, j - i), input.substr(j)}) {
          const std::string emitted = r.Feed(piece);
          ASSERT_TRUE(IsValidUtf8(emitted)) << i << "," << j;
          ASSERT_LE(r.held_bytes(), 3u);
          out += emitted;
        }
        out += r.Finish();
        ASSERT_EQ(out, expected) << "splits at " << i << " and " << j;
      }
    }
    Utf8StreamRepairer bytewise;
    std::string out;
    for (char c : input) out += bytewise.Feed(absl::string_view(&c, 1));
    out += bytewise.Finish();
    EXPECT_EQ(out, expected);
  }
}

TEST(Utf8RepairTest, HoldsBackOnlyWhatCouldStillComplete) {
  struct Case {
    std::string chunk;
    std::string emitted;
    size_t held;
  };
  const std::vector<Case> cases = {
      {"ab\xE2\x82", "ab", 2},                  // could become U+20AC
      {"ab\xF0\x9F\x98", "ab", 3},              // could become U+1F600
      {"ab\xC3", "ab", 1},                      // could become U+00E9
      {"ab\xE0\x80", "ab" + kFffd + kFffd, 0},  // E0 80 can never complete
      {"ab\xF4\x90", "ab" + kFffd + kFffd, 0},  // above U+10FFFF
      {"ab\xED\xA0", "ab" + kFffd + kFffd, 0},  // a surrogate
      {"ab\xC1", "ab" + kFffd, 0},
      {"ab\x80", "ab" + kFffd, 0},
  };
  for (const Case& c : cases) {
    Utf8StreamRepairer r;
    EXPECT_EQ(r.Feed(c.chunk), c.emitted);
    EXPECT_EQ(r.held_bytes(), c.held);
  }
  // What was held completes with the next chunk; nothing is lost or duplicated.
  Utf8StreamRepairer r;
  EXPECT_EQ(r.Feed("\xE2"), "");
  EXPECT_EQ(r.Feed("\x82"), "");
  EXPECT_EQ(r.Feed("\xAC!"), "\xE2\x82\xAC!");
  // A held prefix broken by the next chunk becomes one U+FFFD and the new byte is re-examined.
  EXPECT_EQ(r.Feed("\xF0\x9F"), "");
  EXPECT_EQ(r.Feed("\xC3\xA9"), kFffd + "\xC3\xA9");
  // Finish flushes an incomplete tail as one U+FFFD, and counts it.
  EXPECT_EQ(r.Feed("\xF0\x9F\x98"), "");
  EXPECT_EQ(r.Finish(), kFffd);
  EXPECT_EQ(r.replacements(), 2);
  EXPECT_EQ(r.held_bytes(), 0u);
}

TEST(Utf8RepairTest, PureStepReportsPendingBytes) {
  const Utf8RepairResult first = RepairUtf8Chunk("", "x\xE2\x82", false);
  EXPECT_EQ(first.text, "x");
  EXPECT_EQ(first.pending, "\xE2\x82");
  const Utf8RepairResult second = RepairUtf8Chunk(first.pending, "\xAC", false);
  EXPECT_EQ(second.text, "\xE2\x82\xAC");
  EXPECT_EQ(second.pending, "");
  const Utf8RepairResult at_end = RepairUtf8Chunk(first.pending, "", true);
  EXPECT_EQ(at_end.text, kFffd);
  EXPECT_EQ(at_end.replacements, 1);
}

TEST(Utf8RepairTest, StreamRepairerReportsWhatItHolds) {
  Utf8StreamRepairer r;
  EXPECT_EQ(r.Feed("caf\xC3"), "caf");
  EXPECT_TRUE(r.has_pending());
  EXPECT_EQ(r.Feed("\xA9!"), "\xC3\xA9!");
  EXPECT_FALSE(r.has_pending());
  EXPECT_EQ(r.Finish(), "");
  EXPECT_EQ(r.replacements(), 0);
}

// EscapeInvalidUtf8 + UnescapeRawBytes (the cloud-proxy's way of letting a JSON parser read a
// chunk whose characters are split): raw bytes come back exactly, whatever the split.
TEST(EscapeInvalidUtf8Test, RoundTripsRawBytesThroughValidText) {
  const std::string raw = "caf\xC3\"x\xA9\xFF ok \xE2\x82\xAC\xF0\x9F";
  const std::string escaped = EscapeInvalidUtf8(raw);
  EXPECT_TRUE(IsValidUtf8(escaped));
  EXPECT_EQ(UnescapeRawBytes(escaped), raw);
  // Valid text is untouched both ways (no U+F780..U+F7FF inside).
  EXPECT_EQ(EscapeInvalidUtf8("h\xC3\xA9llo"), "h\xC3\xA9llo");
  EXPECT_EQ(UnescapeRawBytes("h\xC3\xA9llo"), "h\xC3\xA9llo");
}

// Found by utf8_fuzz: a genuine U+F780 next to an invalid byte used to unescape to the raw
// byte 0x80.
TEST(EscapeInvalidUtf8Test, GenuineEscapeCharactersRoundTrip) {
  for (const std::string& raw : {std::string("\xEF\x9E\x80 \xFF"), std::string("\xC3\xEF\x9F\xBF"),
                                 std::string("a\xEF\x9E\x80z")}) {
    const std::string escaped = EscapeInvalidUtf8(raw);
    EXPECT_TRUE(IsValidUtf8(escaped));
    EXPECT_EQ(UnescapeRawBytes(escaped), raw);
  }
  // The fuzzer's input, as found.
  const std::string found = "a\x80z\xC0\xAF\xED\xA0\x02\xEF\xBF\xBD\xEF\x9E\x80\x82";
  EXPECT_EQ(UnescapeRawBytes(EscapeInvalidUtf8(found)), found);
}

TEST(EscapeInvalidUtf8Test, EveryNonAsciiByteAloneRoundTrips) {
  for (int b = 0x80; b <= 0xFF; ++b) {
    const std::string raw = absl::StrCat("<", std::string(1, static_cast<char>(b)), ">");
    const std::string escaped = EscapeInvalidUtf8(raw);
    EXPECT_TRUE(IsValidUtf8(escaped)) << b;
    EXPECT_EQ(UnescapeRawBytes(escaped), raw) << b;
    // Escaped and then repaired, the bytes read as the repair of the raw bytes.
    Utf8StreamRepairer r;
    EXPECT_EQ(r.Feed(UnescapeRawBytes(escaped)) + r.Finish(), RepairUtf8(raw)) << b;
  }
}

}  // namespace
}  // namespace tiermesh::text
