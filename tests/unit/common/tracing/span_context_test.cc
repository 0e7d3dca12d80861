#include "services/common/tracing/span_context.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::tracing {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kSpan[] = "00f067aa0ba902b7";

struct ParseCase {
  std::string value;
  const char* error;  // nullptr: valid
  uint8_t flags = 0;
};

TEST(ParseTraceparent, Table) {
  const std::string ok = std::string("00-") + kTrace + "-" + kSpan + "-01";
  const ParseCase cases[] = {
      {ok, nullptr, 0x01},
      {std::string("00-") + kTrace + "-" + kSpan + "-00", nullptr, 0x00},
      // Unknown flag bits are kept (and passed on) as they are.
      {std::string("00-") + kTrace + "-" + kSpan + "-09", nullptr, 0x09},
      {" \t" + ok + " ", nullptr, 0x01},  // optional whitespace around a header value
      // Future versions: parse the 00 fields, ignore what follows a '-'.
      {std::string("01-") + kTrace + "-" + kSpan + "-01", nullptr, 0x01},
      {std::string("cc-") + kTrace + "-" + kSpan + "-01-what-the-future-holds", nullptr, 0x01},
      {std::string("cc-") + kTrace + "-" + kSpan + "-01.x", "continue with '-'"},
      {std::string("ff-") + kTrace + "-" + kSpan + "-01", "version ff is forbidden"},
      // Version 00 is exactly 55 characters.
      {ok + "-extra", "exactly 55 characters, got 61"},
      {ok.substr(0, 54), "at least 55 characters, got 54"},
      {"", "at least 55 characters, got 0"},
      // Zero ids.
      {"00-00000000000000000000000000000000-" + std::string(kSpan) + "-01",
       "trace-id is all zeros"},
      {std::string("00-") + kTrace + "-0000000000000000-01", "parent-id is all zeros"},
      // Upper case is invalid everywhere.
      {"00-4BF92F3577B34DA6A3CE929D0E0E4736-" + std::string(kSpan) + "-01",
       "trace-id has upper-case hex"},
      {std::string("00-") + kTrace + "-00F067AA0BA902B7-01", "parent-id has upper-case hex"},
      {std::string("00-") + kTrace + "-" + kSpan + "-0A", "trace-flags has upper-case hex"},
      {std::string("0A-") + kTrace + "-" + kSpan + "-01", "version has upper-case hex"},
      // Not hex, wrong separators, wrong field lengths.
      {"00-4bf92f3577b34da6a3ce929d0e0e473g-" + std::string(kSpan) + "-01", "trace-id is not hex"},
      {std::string("00-") + kTrace + "-00f067aa0ba902bz-01", "parent-id is not hex"},
      {std::string("00-") + kTrace + "-" + kSpan + "-0x", "trace-flags is not hex"},
      {std::string("00_") + kTrace + "-" + kSpan + "-01", "separated by '-'"},
      {std::string("00-") + kTrace + "_" + kSpan + "-01", "separated by '-'"},
      {std::string("00-") + kTrace + "-" + kSpan + "_01", "separated by '-'"},
      {std::string("00-") + kTrace + "0-" + kSpan + "-1", "separated by '-'"},
      {std::string("00-") + kTrace + "-" + kSpan + "1-1", "separated by '-'"},
  };
  for (const ParseCase& c : cases) {
    absl::StatusOr<SpanContext> got = ParseTraceparent(c.value);
    if (c.error == nullptr) {
      ASSERT_TRUE(got.ok()) << "'" << c.value << "': " << got.status();
      EXPECT_EQ(got->trace_id.ToHex(), kTrace);
      EXPECT_EQ(got->span_id.ToHex(), kSpan);
      EXPECT_EQ(got->trace_flags, c.flags) << c.value;
      EXPECT_TRUE(got->is_remote);
      EXPECT_TRUE(got->trace_state.empty());
    } else {
      EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
          << "'" << c.value << "'";
    }
  }
}

TEST(FormatTraceparent, RoundTripsAndSkipsInvalidContexts) {
  const std::string value = std::string("00-") + kTrace + "-" + kSpan + "-01";
  ASSERT_OK_AND_ASSIGN(SpanContext context, ParseTraceparent(value));
  EXPECT_EQ(FormatTraceparent(context), value);
  EXPECT_TRUE(context.sampled());
  context.trace_flags = 0xab;
  EXPECT_EQ(FormatTraceparent(context), std::string("00-") + kTrace + "-" + kSpan + "-ab");
  // A future version is re-emitted as 00.
  ASSERT_OK_AND_ASSIGN(context,
                       ParseTraceparent(std::string("02-") + kTrace + "-" + kSpan + "-00"));
  EXPECT_EQ(FormatTraceparent(context), std::string("00-") + kTrace + "-" + kSpan + "-00");
  EXPECT_EQ(FormatTraceparent(SpanContext()), "");
}

TEST(Id, FromHexAndToHex) {
  EXPECT_EQ(TraceId::FromHex(kTrace)->ToHex(), kTrace);
  EXPECT_EQ(SpanId::FromHex(kSpan)->ToHex(), kSpan);
  EXPECT_FALSE(TraceId::FromHex(kSpan).has_value());  // wrong length
  EXPECT_FALSE(SpanId::FromHex("00F067AA0BA902B7").has_value());
  EXPECT_FALSE(SpanId::FromHex("00f067aa0ba902b").has_value());
  ASSERT_TRUE(SpanId::FromHex("0000000000000000").has_value());
  EXPECT_FALSE(SpanId::FromHex("0000000000000000")->IsValid());
  EXPECT_FALSE(TraceId().IsValid());
  EXPECT_EQ(TraceId().ToHex(), std::string(32, '0'));
}

struct TracestateCase {
  const char* in;
  const char* want;
};

TEST(NormalizeTracestate, Table) {
  const std::string long_value(600, 'a');
  const std::string too_long = "k=" + long_value;
  std::string many;
  for (int i = 0; i < 33; ++i) many += "k" + std::to_string(i) + "=v,";
  const TracestateCase cases[] = {
      {"", ""},
      {"congo=t61rcWkgMzE", "congo=t61rcWkgMzE"},
      {"rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
      {" a=1 ,, b=2 ,", "a=1,b=2"},
      {"a=1,novalue", ""},
      {"=1", ""},
      {"a=", ""},
      {"a=1\x01", ""},
      {"a=caf\xC3\xA9", ""},
      {too_long.c_str(), ""},
      {many.c_str(), ""},
  };
  for (const TracestateCase& c : cases) {
    EXPECT_EQ(NormalizeTracestate(c.in), c.want) << "'" << c.in << "'";
  }
}

}  // namespace
}  // namespace tiermesh::tracing
