#include "services/classifier/pii.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tiermesh::classifier {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct PiiCase {
  std::string name;
  std::string text;
  std::vector<std::string> kinds;
};

class PiiTest : public ::testing::TestWithParam<PiiCase> {};

TEST_P(PiiTest, DetectsExactlyTheExpectedKinds) {
  EXPECT_EQ(PiiKindNames(DetectPii(GetParam().text)), GetParam().kinds) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(
    TruePositives, PiiTest,
    ::testing::Values(
        PiiCase{"email", "write to jane.doe+news@example.co.uk today", {"email"}},
        PiiCase{"email_at_start", "bob@corp.io: please reply", {"email"}},
        PiiCase{"phone_international", "Call me on +44 20 7946 0958 tomorrow", {"phone"}},
        PiiCase{"phone_plus_compact", "whatsapp +491701234567", {"phone"}},
        PiiCase{"phone_us_parens", "my number is (415) 555-2671.", {"phone"}},
        PiiCase{"phone_us_dashes", "reach 415-555-2671 after 5", {"phone"}},
        PiiCase{"phone_us_dots", "415.555.2671", {"phone"}},
        PiiCase{"phone_with_country_1", "1-800-555-0199", {"phone"}},
        PiiCase{"phone_keyword_plain", "phone: 0612345678", {"phone"}},
        PiiCase{"phone_keyword_short", "tel 555-0199", {"phone"}},
        PiiCase{"visa_compact", "card 4111111111111111 exp 12/27", {"card"}},
        PiiCase{"visa_spaced", "4012 8888 8888 1881", {"card"}},
        PiiCase{"mastercard_dashed", "5555-5555-5555-4444", {"card"}},
        PiiCase{"amex_grouped", "amex 3782 822463 10005", {"card"}},
        PiiCase{"iban_de_spaced", "IBAN DE89 3704 0044 0532 0130 00 please", {"iban"}},
        PiiCase{"iban_gb_compact", "send to GB82WEST12345698765432", {"iban"}},
        PiiCase{"iban_fr", "FR14 2004 1010 0505 0001 3M02 606", {"iban"}},
        PiiCase{"ssn_dashes", "SSN 536-22-1234", {"national_id"}},
        PiiCase{"ssn_keyword_compact", "my social security number is 536221234", {"national_id"}},
        PiiCase{"several",
                "a@b.com, 415-555-2671, 4111 1111 1111 1111, DE89370400440532013000, 536-22-1234",
                {"email", "phone", "card", "iban", "national_id"}}),
    [](const ::testing::TestParamInfo<PiiCase>& param_info) { return param_info.param.name; });

INSTANTIATE_TEST_SUITE_P(
    FalsePositives, PiiTest,
    ::testing::Values(
        PiiCase{"plain_prose", "What is the weather in Paris today?", {}},
        PiiCase{"at_without_domain", "meet @ noon, ping @alice on slack", {}},
        PiiCase{"decorator", "use @property and @staticmethod in python", {}},
        PiiCase{"email_numeric_tld", "user@host.123", {}},
        PiiCase{"math_numbers", "Natalia sold 48 clips in April and 1234567 in May.", {}},
        PiiCase{"big_number", "The population is 1234567890 people.", {}},
        PiiCase{"date_iso", "on 2024-06-01 at 10:30", {}},
        PiiCase{"isbn", "ISBN 978-3-16-148410-0", {}},
        PiiCase{"decimal", "pi is about 3.14159265358979", {}},
        PiiCase{"luhn_fails", "4111 1111 1111 1112", {}},
        PiiCase{"unknown_card_prefix", "9111111111111111", {}},
        PiiCase{"iban_bad_checksum", "DE89 3704 0044 0532 0130 01", {}},
        PiiCase{"iban_unknown_country", "ZZ89370400440532013000", {}},
        PiiCase{"ssn_area_000", "000-12-3456", {}}, PiiCase{"ssn_area_666", "666-12-3456", {}},
        PiiCase{"ssn_area_9xx", "912-12-3456", {}}, PiiCase{"ssn_group_00", "536-00-1234", {}},
        PiiCase{"ssn_serial_0000", "536-22-0000", {}},
        PiiCase{"nine_digits_no_keyword", "order 536221234 shipped", {}},
        PiiCase{"arithmetic", "Compute 415 - 555 + 2671 and 12 * 34 = 408", {}},
        PiiCase{"version_string", "upgrade to 1.2.3 or v415.555.2671x", {}},
        PiiCase{"plus_in_math", "2+12345678901 is large", {}},
        PiiCase{"phone_keyword_too_short", "call me at 4155", {}},
        PiiCase{"invalid_utf8", std::string("caf\xC3\x28 \xFF\xFE 4111 @@ \xE2\x82"), {}},
        PiiCase{"empty", "", {}}),
    [](const ::testing::TestParamInfo<PiiCase>& param_info) { return param_info.param.name; });

TEST(LuhnTest, KnownValues) {
  EXPECT_TRUE(LuhnValid("79927398713"));
  EXPECT_FALSE(LuhnValid("79927398710"));
  EXPECT_FALSE(LuhnValid(""));
  EXPECT_FALSE(LuhnValid("12a4"));
}

TEST(IbanTest, KnownValues) {
  EXPECT_TRUE(IbanValid("DE89370400440532013000"));
  EXPECT_TRUE(IbanValid("GB82WEST12345698765432"));
  EXPECT_FALSE(IbanValid("GB82WEST12345698765433"));
  EXPECT_FALSE(IbanValid("gb82WEST12345698765432"));
  EXPECT_FALSE(IbanValid("DE89"));
}

TEST(PiiKindNamesTest, NeverContainsData) {
  const PiiKinds kinds = DetectPii("jane@example.com 4111111111111111");
  EXPECT_THAT(PiiKindNames(kinds), ElementsAre("email", "card"));
  EXPECT_THAT(PiiKindNames(PiiKinds{}), IsEmpty());
}

TEST(PiiTest, ArbitraryBytesNeverCrash) {
  // Deterministic pseudo-random bytes, biased towards digits and separators.
  uint64_t state = 42;
  const std::string alphabet = "0123456789 -.()+@abcXYZ\xC3\xFF\n";
  for (int round = 0; round < 2000; ++round) {
    std::string text;
    const int length = static_cast<int>(state % 80);
    for (int i = 0; i < length; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text.push_back(alphabet[(state >> 33) % alphabet.size()]);
    }
    (void)DetectPii(text);
  }
  SUCCEED();
}

}  // namespace
}  // namespace tiermesh::classifier
