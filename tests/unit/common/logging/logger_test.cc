#include "services/common/logging/logger.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/logging/trace_context.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::logging {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::tiermesh::testing::StatusIs;

absl::Time FixedTime() {
  return absl::FromUnixMicros(1795000000123456);  // 2026-11-18T11:06:40.123456Z
}

struct Harness {
  std::shared_ptr<MemorySink> sink = std::make_shared<MemorySink>();
  Logger logger;

  explicit Harness(Level level = Level::kDebug, bool redact_free_text = true)
      : logger(Options(sink, level, redact_free_text)) {}

  static LoggerOptions Options(std::shared_ptr<MemorySink> sink, Level level, bool redact) {
    LoggerOptions options;
    options.service = "router";
    options.level = level;
    options.sink = std::move(sink);
    options.clock = FixedTime;
    options.redact_free_text = redact;
    return options;
  }

  // Parses every line; fails the test on a line that is not one JSON object.
  std::vector<nlohmann::json> Parsed() const {
    std::vector<nlohmann::json> out;
    for (const std::string& line : sink->Lines()) {
      EXPECT_EQ(line.find('\n'), std::string::npos) << line;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      EXPECT_TRUE(j.is_object()) << line;
      out.push_back(std::move(j));
    }
    return out;
  }
};

TEST(Logger, WritesOneJsonObjectPerLine) {
  Harness h;
  h.logger.Info("request served", {{"tier", "small"},
                                   {"latency_ms", 12.5},
                                   {"ok", true},
                                   {"attempts", 2},
                                   {"bytes", uint64_t{18446744073709551615u}},
                                   {"neg", int64_t{-3}},
                                   {"nothing", FieldValue()},
                                   {"status", absl::UnavailableError("down")}});
  const auto lines = h.Parsed();
  ASSERT_THAT(lines, SizeIs(1));
  const nlohmann::json& j = lines[0];
  EXPECT_EQ(j["ts"], "2026-11-18T11:06:40.123456Z");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["service"], "router");
  EXPECT_EQ(j["msg"], "request served");
  EXPECT_EQ(j["tier"], "small");
  EXPECT_EQ(j["latency_ms"], 12.5);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["attempts"], 2);
  EXPECT_EQ(j["bytes"].get<uint64_t>(), 18446744073709551615u);
  EXPECT_EQ(j["neg"], -3);
  EXPECT_TRUE(j["nothing"].is_null());
  EXPECT_EQ(j["status"], "UNAVAILABLE: down");
  EXPECT_FALSE(j.contains("trace_id"));
  // Keys come in a fixed order: the line's own keys first.
  EXPECT_EQ(h.sink->Lines()[0].rfind("{\"ts\":", 0), 0u);
}

TEST(Logger, TimestampsMatchAbslFormatTime) {
  // The hand-rolled RFC 3339 formatter against absl's, over leap years,
  // month ends, the epoch, times before it and far ahead.
  std::vector<absl::Time> times = {
      absl::UnixEpoch(),
      absl::UnixEpoch() - absl::Microseconds(1),
      absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 59), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(2000, 3, 1, 0, 0, 0), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(1969, 12, 31, 12, 0, 0), absl::UTCTimeZone()),
      absl::FromCivil(absl::CivilSecond(2100, 12, 31, 23, 59, 59), absl::UTCTimeZone()) +
          absl::Microseconds(999999)};
  for (int64_t s = -86400LL * 365 * 30; s < 86400LL * 365 * 200; s += 86400 * 7 + 3607) {
    times.push_back(absl::FromUnixMicros(s * 1000000 + (s % 1000000 + 1000000) % 1000000));
  }
  for (absl::Time t : times) {
    auto sink = std::make_shared<MemorySink>();
    LoggerOptions options;
    options.sink = sink;
    options.clock = [t] { return t; };
    Logger(std::move(options)).Info("t");
    const auto j = nlohmann::json::parse(sink->Lines().at(0));
    ASSERT_EQ(j["ts"], absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone()));
  }
}

TEST(Logger, DoublesRoundTripAndNonFiniteStaysValidJson) {
  Harness h;
  h.logger.Info("m",
                {{"a", 0.1}, {"b", 1e300}, {"c", 3.0}, {"nan", std::nan("")}, {"inf", 1.0 / 0.0}});
  const auto j = h.Parsed().at(0);
  EXPECT_EQ(j["a"].get<double>(), 0.1);
  EXPECT_EQ(j["b"].get<double>(), 1e300);
  EXPECT_EQ(j["c"].get<double>(), 3.0);
  EXPECT_EQ(j["nan"], "NaN");
  EXPECT_EQ(j["inf"], "Infinity");
}

TEST(Logger, EscapesControlCharactersAndRepairsInvalidUtf8) {
  Harness h;
  const std::string weird = std::string("quote\" back\\ nl\n tab\t nul") + '\0' + "\x01 end";
  h.logger.Info(weird, {{"bytes", std::string("ok \xC3\xA9 bad \xFF\xC3 \xED\xA0\x80 z")}});
  const auto j = h.Parsed().at(0);
  EXPECT_EQ(j["msg"], weird);
  EXPECT_EQ(j["bytes"],
            "ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD z");
}

TEST(Logger, LevelThresholdAndSetLevel) {
  Harness h(Level::kWarn);
  h.logger.Debug("d");
  h.logger.Info("i");
  h.logger.Warn("w");
  h.logger.Error("e");
  EXPECT_FALSE(h.logger.Enabled(Level::kInfo));
  const Logger child = h.logger.With({{"k", 1}});
  child.SetLevel(Level::kDebug);  // shared by every logger of the same root
  h.logger.Debug("d2");
  const auto lines = h.Parsed();
  ASSERT_THAT(lines, SizeIs(3));
  EXPECT_EQ(lines[0]["level"], "warn");
  EXPECT_EQ(lines[1]["level"], "error");
  EXPECT_EQ(lines[2]["msg"], "d2");
  EXPECT_EQ(lines[2]["level"], "debug");
}

TEST(Logger, ParseLevel) {
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("INFO"), Level::kInfo);
  EXPECT_EQ(*ParseLevel("warning"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("Warn"), Level::kWarn);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  EXPECT_THAT(ParseLevel("verbose"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'verbose'")));
  EXPECT_THAT(ParseLevel(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("level")));
}

TEST(Logger, SensitiveKeysAreRedactedWhateverTheirType) {
  Harness h;
  h.logger.With({{"authorization", "Bearer abc"}})
      .Info("call", {{"api_key", "sk-live"},
                     {"x-tiermesh-provider-key", "pk"},
                     {"cache_key", 12345},
                     {"client_secret", true},
                     {"max_tokens", 256}});
  const auto j = h.Parsed().at(0);
  EXPECT_EQ(j["authorization"], "[REDACTED]");
  EXPECT_EQ(j["api_key"], "[REDACTED]");
  EXPECT_EQ(j["x-tiermesh-provider-key"], "[REDACTED]");
  EXPECT_EQ(j["cache_key"], "[REDACTED]");
  EXPECT_EQ(j["client_secret"], "[REDACTED]");
  EXPECT_EQ(j["max_tokens"], 256);
  const std::string raw = h.sink->Lines()[0];
  EXPECT_EQ(raw.find("sk-live"), std::string::npos);
  EXPECT_EQ(raw.find("abc"), std::string::npos);
}

TEST(Logger, FreeTextSecretsAreRedactedUnlessTurnedOff) {
  const std::string key = "sk-abcdefghijklmnopqrstuvwxyz";
  Harness on;
  on.logger.Error("upstream said: Incorrect API key " + key, {{"body", "Bearer zzz"}});
  const auto j = on.Parsed().at(0);
  EXPECT_EQ(j["msg"], "upstream said: Incorrect API key sk-[REDACTED]");
  EXPECT_EQ(j["body"], "Bearer [REDACTED]");

  Harness off(Level::kDebug, /*redact_free_text=*/false);
  off.logger.Error("key " + key, {{"api_key", "still hidden"}});
  const auto k = off.Parsed().at(0);
  EXPECT_EQ(k["msg"], "key " + key);
  EXPECT_EQ(k["api_key"], "[REDACTED]");
}

TEST(Logger, ReservedKeysCannotBeForged) {
  Harness h;
  h.logger.Info("real", {{"msg", "fake"}, {"level", "debug"}, {"trace_id", "x"}});
  const auto j = h.Parsed().at(0);
  EXPECT_EQ(j["msg"], "real");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["field.msg"], "fake");
  EXPECT_EQ(j["field.level"], "debug");
  EXPECT_EQ(j["field.trace_id"], "x");
  EXPECT_FALSE(j.contains("trace_id"));
}

TEST(Logger, TraceIdsFromScopeAndFromBinding) {
  Harness h;
  h.logger.Info("before");
  {
    ScopedTraceIds outer("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    h.logger.Info("outer");
    {
      ScopedTraceIds inner("4bf92f3577b34da6a3ce929d0e0e4736", "1111111111111111");
      h.logger.Info("inner");
    }
    h.logger.Info("outer again");
    // An explicit binding wins over the thread's scope.
    h.logger.WithTraceIds("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb").Info("bound");
  }
  h.logger.Info("after");
  // The scope is per thread.
  std::thread other([&] { h.logger.Info("other thread"); });
  {
    ScopedTraceIds scope("cccccccccccccccccccccccccccccccc", "dddddddddddddddd");
    other.join();
  }
  const auto lines = h.Parsed();
  ASSERT_THAT(lines, SizeIs(7));
  EXPECT_FALSE(lines[0].contains("trace_id"));
  EXPECT_EQ(lines[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(lines[1]["span_id"], "00f067aa0ba902b7");
  EXPECT_EQ(lines[2]["span_id"], "1111111111111111");
  EXPECT_EQ(lines[3]["span_id"], "00f067aa0ba902b7");
  EXPECT_EQ(lines[4]["trace_id"], "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  EXPECT_EQ(lines[4]["span_id"], "bbbbbbbbbbbbbbbb");
  EXPECT_FALSE(lines[5].contains("trace_id"));
  EXPECT_FALSE(lines[6].contains("trace_id"));
}

TEST(Logger, EmptyScopedIdsHideOuterIds) {
  Harness h;
  ScopedTraceIds outer("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
  {
    ScopedTraceIds none("", "");  // e.g. a span with an invalid context
    h.logger.Info("hidden");
  }
  h.logger.Info("visible");
  const auto lines = h.Parsed();
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_FALSE(lines[0].contains("trace_id"));
  EXPECT_EQ(lines[1]["span_id"], "00f067aa0ba902b7");
}

TEST(Logger, WithAddsFieldsWithoutChangingTheParent) {
  Harness h;
  const Logger rpc = h.logger.With({{"method", "Chat"}}).With({{"tenant", "acme"}});
  rpc.Info("a", {{"n", 1}});
  h.logger.Info("b");
  const auto lines = h.Parsed();
  ASSERT_THAT(lines, SizeIs(2));
  EXPECT_EQ(lines[0]["method"], "Chat");
  EXPECT_EQ(lines[0]["tenant"], "acme");
  EXPECT_EQ(lines[0]["n"], 1);
  EXPECT_FALSE(lines[1].contains("method"));
}

TEST(Logger, DiscardWritesNothing) {
  const Logger logger = Logger::Discard();
  EXPECT_FALSE(logger.Enabled(Level::kError));
  logger.Error("dropped");  // must not crash
}

TEST(Logger, ConcurrentWritersNeverInterleave) {
  std::ostringstream out;
  LoggerOptions options;
  options.service = "worker";
  options.sink = std::make_shared<OstreamSink>(&out);
  const Logger logger(std::move(options));
  constexpr int kThreads = 4;
  constexpr int kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string payload(100 + t * 50, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) logger.Info(payload, {{"t", t}, {"i", i}});
    });
  }
  for (auto& thread : threads) thread.join();
  std::istringstream in(out.str());
  std::string line;
  int count = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    const int t = j["t"].get<int>();
    EXPECT_EQ(j["msg"], std::string(100 + t * 50, static_cast<char>('a' + t)));
    ++count;
  }
  EXPECT_EQ(count, kThreads * kLines);
}

TEST(Logger, FdSinkWritesWholeLines) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  {
    LoggerOptions options;
    options.service = "classifier";
    options.sink = std::make_shared<FdSink>(fds[1]);
    options.clock = FixedTime;
    Logger(std::move(options)).Info("to a pipe");
  }
  ::close(fds[1]);
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) got.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  EXPECT_EQ(got,
            "{\"ts\":\"2026-11-18T11:06:40.123456Z\",\"level\":\"info\",\"service\":\"classifier\","
            "\"msg\":\"to a pipe\"}\n");
}

}  // namespace
}  // namespace tiermesh::logging
