#include "services/classifier/text.h"

#include <string>

#include "gtest/gtest.h"

#include "services/classifier/sha256.h"

namespace tiermesh::classifier {
namespace {

struct DecodeCase {
  std::string bytes;
  char32_t code_point;
  int length;
  bool valid;
};

class DecodeTest : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeTest, DecodesOrConsumesOneBadByte) {
  const DecodeCase& c = GetParam();
  const DecodedChar d = DecodeUtf8At(c.bytes, 0);
  EXPECT_EQ(d.code_point, c.code_point);
  EXPECT_EQ(d.length, c.length);
  EXPECT_EQ(d.valid, c.valid);
}

INSTANTIATE_TEST_SUITE_P(
    All, DecodeTest,
    ::testing::Values(DecodeCase{"A", 'A', 1, true}, DecodeCase{"\xC3\xA9", 0xE9, 2, true},
                      DecodeCase{"\xE2\x82\xAC", 0x20AC, 3, true},
                      DecodeCase{"\xF0\x9F\x98\x80", 0x1F600, 4, true},
                      DecodeCase{"\xC3", kReplacementChar, 1, false},          // truncated
                      DecodeCase{"\xC3\x28", kReplacementChar, 1, false},      // bad continuation
                      DecodeCase{"\xC0\xAF", kReplacementChar, 1, false},      // overlong
                      DecodeCase{"\xED\xA0\x80", kReplacementChar, 1, false},  // surrogate
                      DecodeCase{"\xF4\x90\x80\x80", kReplacementChar, 1, false},  // > U+10FFFF
                      DecodeCase{"\x80", kReplacementChar, 1, false},
                      DecodeCase{"\xFF", kReplacementChar, 1, false}));

TEST(SanitizeUtf8Test, ReplacesOnlyInvalidBytes) {
  EXPECT_EQ(SanitizeUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(SanitizeUtf8("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(SanitizeUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(SanitizeUtf8("\xC0\xAF\xED\xA0\x80xyz\xF8")));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));
  EXPECT_TRUE(IsValidUtf8(""));
}

TEST(ScriptTest, ClassifiesLetters) {
  EXPECT_EQ(ScriptOf('a'), Script::kLatin);
  EXPECT_EQ(ScriptOf('7'), Script::kOther);
  EXPECT_EQ(ScriptOf(0xE9), Script::kLatin);      // é
  EXPECT_EQ(ScriptOf(0x436), Script::kCyrillic);  // ж
  EXPECT_EQ(ScriptOf(0x5929), Script::kHan);      // 天
  EXPECT_EQ(ScriptOf(0x3042), Script::kKana);     // あ
  EXPECT_EQ(ScriptOf(0xD55C), Script::kHangul);   // 한
  EXPECT_EQ(ScriptOf(0x627), Script::kArabic);    // ا
  EXPECT_EQ(ScriptName(Script::kHan), "han");
}

TEST(EstimateTokensTest, RoughlyFourAsciiBytesPerToken) {
  EXPECT_EQ(EstimateTokens(""), 0);
  EXPECT_EQ(EstimateTokens("abcd"), 1);
  EXPECT_EQ(EstimateTokens("abcde"), 2);
  EXPECT_EQ(EstimateTokens("\xE5\xA4\xA9\xE6\xB0\x94"), 2);  // two Han characters
  EXPECT_EQ(EstimateTokens(std::string(400, 'x')), 100);
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  std::string million(1000000, 'a');
  EXPECT_EQ(Sha256Hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7));
  Sha256 h;
  for (size_t i = 0; i < data.size(); i += 13) h.Update(std::string_view(data).substr(i, 13));
  EXPECT_EQ(Sha256::Hex(h.Finish()), Sha256Hex(data));
}

}  // namespace
}  // namespace tiermesh::classifier
