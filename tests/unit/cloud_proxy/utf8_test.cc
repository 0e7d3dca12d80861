#include "services/cloud_proxy/utf8.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tiermesh::cloud {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

struct RepairCase {
  std::string name;
  std::string in;
  std::string want;
};

class RepairUtf8Test : public ::testing::TestWithParam<RepairCase> {};

TEST_P(RepairUtf8Test, Repairs) {
  EXPECT_EQ(RepairUtf8(GetParam().in), GetParam().want);
  EXPECT_EQ(IsValidUtf8(GetParam().in), GetParam().in == GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, RepairUtf8Test,
    ::testing::Values(RepairCase{"ascii", "hello", "hello"},
                      RepairCase{"two_byte", "caf\xC3\xA9", "caf\xC3\xA9"},
                      RepairCase{"four_byte", "\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
                      RepairCase{"lone_continuation", "a\x80z", std::string("a") + kFffd + "z"},
                      RepairCase{"overlong_c0", "\xC0\xAF", std::string(kFffd) + kFffd},
                      RepairCase{"surrogate", "\xED\xA0\x80", std::string(kFffd) + kFffd + kFffd},
                      RepairCase{"truncated_at_end", "ab\xE2\x82", std::string("ab") + kFffd},
                      RepairCase{"truncated_middle", "\xE2\x82z", std::string(kFffd) + "z"},
                      RepairCase{"above_max", "\xF4\x90\x80\x80",
                                 std::string(kFffd) + kFffd + kFffd + kFffd},
                      RepairCase{"ff", "\xFF", kFffd}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(Utf8Repairer, HoldsSplitCharacterAcrossChunks) {
  Utf8Repairer r;
  EXPECT_EQ(r.Feed("caf\xC3"), "caf");
  EXPECT_TRUE(r.has_pending());
  EXPECT_EQ(r.Feed("\xA9!"), "\xC3\xA9!");
  EXPECT_FALSE(r.has_pending());
  EXPECT_EQ(r.Flush(), "");
}

TEST(Utf8Repairer, EveryByteSplitGivesTheSameText) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80z\xFF";
  const std::string want = RepairUtf8(text);
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Repairer r;
    std::string got = r.Feed(text.substr(0, cut));
    got += r.Feed(text.substr(cut));
    got += r.Flush();
    EXPECT_EQ(got, want) << "cut at " << cut;
  }
  // One byte at a time.
  Utf8Repairer r;
  std::string got;
  for (char c : text) got += r.Feed(std::string(1, c));
  got += r.Flush();
  EXPECT_EQ(got, want);
}

TEST(Utf8Repairer, FlushReplacesAnIncompleteTail) {
  Utf8Repairer r;
  EXPECT_EQ(r.Feed("x\xF0\x9F"), "x");
  EXPECT_EQ(r.Flush(), kFffd);
}

}  // namespace
}  // namespace tiermesh::cloud

namespace tiermesh::cloud {
namespace {

TEST(EscapeInvalidUtf8, RoundTripsRawBytesThroughValidText) {
  const std::string raw = "caf\xC3\"x\xA9\xFF ok \xE2\x82\xAC";
  const std::string escaped = EscapeInvalidUtf8(raw);
  EXPECT_TRUE(IsValidUtf8(escaped));
  EXPECT_EQ(UnescapeRawBytes(escaped), raw);
  // Valid text is untouched both ways (no U+F780..U+F7FF inside).
  EXPECT_EQ(EscapeInvalidUtf8("h\xC3\xA9llo"), "h\xC3\xA9llo");
  EXPECT_EQ(UnescapeRawBytes("h\xC3\xA9llo"), "h\xC3\xA9llo");
}

}  // namespace
}  // namespace tiermesh::cloud
