#include "services/cloud_proxy/pricing.h"

#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/cloud_proxy/usage.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

struct ParseCase {
  std::string text;
  int64_t nano;  // -1: error
};

class ParseUsdPerMtokTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseUsdPerMtokTest, Parses) {
  const ParseCase& c = GetParam();
  absl::StatusOr<int64_t> got = ParseUsdPerMtok(c.text);
  if (c.nano < 0) {
    EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.text)));
  } else {
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.nano);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseUsdPerMtokTest,
    ::testing::Values(ParseCase{"0", 0}, ParseCase{"0.15", 150'000'000},
                      ParseCase{"3", 3'000'000'000}, ParseCase{"15.", 15'000'000'000},
                      ParseCase{".5", 500'000'000}, ParseCase{"0.000000001", 1},
                      ParseCase{"1000000", 1'000'000'000'000'000},
                      ParseCase{"1000000.000000001", -1}, ParseCase{"0.0000000001", -1},
                      ParseCase{"", -1}, ParseCase{".", -1}, ParseCase{"-1", -1},
                      ParseCase{"1e-6", -1}, ParseCase{"1,5", -1}, ParseCase{"1.2.3", -1},
                      ParseCase{" 1", -1}, ParseCase{"99999999999999999999", -1}));

tiermesh::v1::Usage U(int64_t prompt, int64_t completion, int64_t cached, bool estimated = false) {
  return MakeUsage(prompt, completion, cached, estimated);
}

struct CostCase {
  std::string name;
  tiermesh::v1::Usage usage;
  std::string in, out, cached;
  bool byok;
  int64_t nano;
};

class ComputeCostTest : public ::testing::TestWithParam<CostCase> {};

TEST_P(ComputeCostTest, ExactNanoUsd) {
  const CostCase& c = GetParam();
  ASSERT_OK_AND_ASSIGN(Price price, MakePrice(c.in, c.out, c.cached));
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::Cost cost, ComputeCost(c.usage, price, c.byok));
  EXPECT_EQ(cost.nano_usd(), c.nano);
  EXPECT_DOUBLE_EQ(cost.usd(), static_cast<double>(c.nano) / 1e9);
  EXPECT_EQ(cost.byok(), c.byok);
  EXPECT_EQ(cost.estimated(), c.usage.estimated());
  EXPECT_EQ(OperatorNanoUsd(cost), c.byok ? 0 : c.nano);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ComputeCostTest,
    ::testing::Values(
        // 1M in at $3 + 1M out at $15 = $18.
        CostCase{"whole_millions", U(1'000'000, 1'000'000, 0), "3", "15", "", false,
                 18'000'000'000},
        // 1000 * $0.15/M + 500 * $0.60/M = $0.00045.
        CostCase{"small", U(1000, 500, 0), "0.15", "0.60", "", false, 450'000},
        // 1 token at $0.000001/M = 0.001 nano-USD -> rounds up to 1.
        CostCase{"sub_nano_rounds_up", U(1, 0, 0), "0.000001", "0", "", false, 1},
        // 1.5 nano-USD -> 2 (rounded up once per request, not per token kind).
        CostCase{"half_rounds_up", U(1, 1, 0), "0.0015", "0", "", false, 2},
        CostCase{"exact_needs_no_rounding", U(1001, 0, 0), "0.001", "0", "", false, 1001},
        CostCase{"zero_usage", U(0, 0, 0), "3", "15", "", false, 0},
        CostCase{"free_model", U(12345, 678, 0), "0", "0", "", false, 0},
        // 1000 prompt of which 800 cached at $0.30/M: 200*$3 + 800*$0.3 + 100*$15 per M.
        CostCase{"cached_price", U(1000, 100, 800), "3", "15", "0.30", false, 2'340'000},
        // No cached price: cached tokens cost the input price.
        CostCase{"cached_default", U(1000, 100, 800), "3", "15", "", false, 4'500'000},
        CostCase{"byok_is_informational", U(1000, 500, 0), "0.15", "0.60", "", true, 450'000},
        CostCase{"estimated_flag", U(1000, 500, 0, true), "0.15", "0.60", "", false, 450'000}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(ComputeCost, RejectsInconsistentUsage) {
  ASSERT_OK_AND_ASSIGN(Price price, MakePrice("1", "1"));
  EXPECT_THAT(ComputeCost(U(10, 1, 11), price, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cached")));
  tiermesh::v1::Usage negative = U(10, 1, 0);
  negative.set_completion_tokens(-1);
  EXPECT_THAT(ComputeCost(negative, price, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
}

TEST(ComputeCost, OverflowIsAnError) {
  ASSERT_OK_AND_ASSIGN(Price price, MakePrice("1000000", "1000000"));
  const int64_t big = std::numeric_limits<int64_t>::max() / 2;
  EXPECT_THAT(ComputeCost(U(big, big, 0), price, false),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("int64")));
}

TEST(ToProtoPrice, ConvertsToUsd) {
  ASSERT_OK_AND_ASSIGN(Price price, MakePrice("0.15", "0.6", "0.075"));
  tiermesh::v1::Price p = ToProtoPrice(price);
  EXPECT_DOUBLE_EQ(p.input_usd_per_mtok(), 0.15);
  EXPECT_DOUBLE_EQ(p.output_usd_per_mtok(), 0.6);
  EXPECT_DOUBLE_EQ(p.cached_input_usd_per_mtok(), 0.075);
}

}  // namespace
}  // namespace tiermesh::cloud
