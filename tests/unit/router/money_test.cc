#include "services/router/money.h"

#include <cstdint>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/config/loader.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::router {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

TEST(ParseUsdTest, AcceptsPlainDecimals) {
  struct Case {
    const char* text;
    NanoUsd nano;
  };
  const Case cases[] = {
      {"0", 0},
      {"0.0", 0},
      {"5", 5'000'000'000},
      {"0.15", 150'000'000},
      {".5", 500'000'000},
      {"12.50", 12'500'000'000},
      {"0.000000001", 1},
      {"1000000000", kMaxConfiguredNanoUsd},
  };
  for (const Case& c : cases) {
    absl::StatusOr<NanoUsd> got = ParseUsd(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(*got, c.nano) << c.text;
  }
}

TEST(ParseUsdTest, RejectsAnythingElseWithTheText) {
  const char* cases[] = {"",    "-1",   "1e3",  "1,5",          "$3",           "1.",
                         ".",   "0x10", " 1",   "1.0000000001", "1000000000.1", "99999999999",
                         "NaN", "inf",  "1.2.3"};
  for (const char* text : cases) {
    EXPECT_THAT(ParseUsd(text), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'")))
        << text;
  }
}

TEST(MoneyTest, TokenCostRoundsUpOnce) {
  struct Case {
    int64_t tokens;
    NanoUsd per_mtok;
    NanoUsd want;
  };
  const Case cases[] = {
      {0, 150'000'000, 0},
      {-5, 150'000'000, 0},
      {1'000'000, 150'000'000, 150'000'000},
      {1, 150'000'000, 150},
      {1, 1, 1},        // 1e-6 nano rounds up to 1
      {3, 333'333, 1},  // 0.999999 -> 1
      {1'000, 0, 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(TokenCostNanoUsd(c.tokens, c.per_mtok), c.want) << c.tokens << " x " << c.per_mtok;
  }
}

TEST(MoneyTest, WorstCaseIsPromptAtInputPlusMaxTokensAtOutput) {
  const Price price{150'000'000, 600'000'000};  // $0.15 / $0.60 per 1M
  // 1200 x 0.15 + 512 x 0.60 = 180 + 307.2 = 487.2 micro-USD -> 487200 nano.
  EXPECT_EQ(WorstCaseNanoUsd(price, 1200, 512), 487'200);
  EXPECT_EQ(WorstCaseNanoUsd(Price{}, 1'000'000, 1'000'000), 0);
  // One rounding for the sum, not one per term: 1 x 0.4 + 1 x 0.4 nano = 0.8 -> 1.
  EXPECT_EQ(WorstCaseNanoUsd(Price{400'000, 400'000}, 1, 1), 1);
}

TEST(MoneyTest, ArithmeticSaturatesInsteadOfOverflowing) {
  constexpr NanoUsd kMax = std::numeric_limits<NanoUsd>::max();
  const Price huge{kMaxConfiguredNanoUsd * 9, kMaxConfiguredNanoUsd * 9};
  EXPECT_EQ(WorstCaseNanoUsd(huge, kMax, kMax), kMax);
  EXPECT_EQ(TokenCostNanoUsd(kMax, kMax), kMax);
  EXPECT_EQ(AddNanoUsd(kMax, 1), kMax);
  EXPECT_EQ(AddNanoUsd(2, 3), 5);
}

TEST(MoneyTest, FormatUsdIsExact) {
  struct Case {
    NanoUsd nano;
    const char* want;
  };
  const Case cases[] = {
      {0, "$0"},
      {1, "$0.000000001"},
      {487'200, "$0.0004872"},
      {12'500'000'000, "$12.50"},
      {5'000'000'000, "$5"},
      {-1'500'000'000, "-$1.50"},
  };
  for (const Case& c : cases) EXPECT_EQ(FormatUsd(c.nano), c.want) << c.nano;
}

TEST(MoneyTest, DecodeNamesThePath) {
  absl::StatusOr<YAML::Node> root = config::ParseYaml("price: -0.5\n", "test.yaml");
  ASSERT_TRUE(root.ok());
  Money money;
  const config::Node node(*root);
  absl::Status s = Decode(node.Child("price", (*root)["price"]), &money);
  EXPECT_THAT(
      s, StatusIs(absl::StatusCode::kInvalidArgument,
                  ::testing::AllOf(HasSubstr("price:"), HasSubstr("'-0.5'"), HasSubstr("line 1"))));
}

}  // namespace
}  // namespace tiermesh::router
