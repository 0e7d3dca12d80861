#include "services/common/tracing/otlp_json.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/status/status_matchers.h"

namespace tiermesh::tracing {
namespace {

using Json = nlohmann::json;

SpanData ChildSpan() {
  SpanData span;
  span.name = "tiermesh.v1.InferenceService/Generate";
  span.kind = SpanKind::kClient;
  span.context.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  span.context.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  span.context.trace_flags = kSampledFlag;
  span.context.trace_state = "congo=t61rcWkgMzE";
  span.parent_span_id = *SpanId::FromHex("b7ad6b7169203331");
  span.start_time = absl::FromUnixNanos(1700000000123456789);
  span.end_time = absl::FromUnixNanos(1700000000223456789);
  span.attributes = {{"rpc.system", "grpc"},
                     {"tokens", int64_t{9007199254740993}},  // > 2^53: must stay exact
                     {"cost_usd", 0.0125},
                     {"fallback", true},
                     {"bad", std::string("caf\xC3")},
                     {"quoted \"key\"", "line\nbreak \\ \"q\""}};
  span.events = {{"first_token", absl::FromUnixNanos(1700000000150000000), {{"ttft_ms", 27}}}};
  span.status_code = SpanStatusCode::kError;
  span.status_message = "UNAVAILABLE: down";
  span.dropped_attributes = 2;
  return span;
}

// The value of the attribute `key` in an OTLP attribute list.
Json Attribute(const Json& list, const std::string& key) {
  for (const Json& kv : list) {
    if (kv["key"] == key) return kv["value"];
  }
  ADD_FAILURE() << "no attribute " << key << " in " << list.dump();
  return Json();
}

TEST(EncodeOtlpJson, MatchesTheOtlpJsonMapping) {
  SpanData root;
  root.name = "tiermesh.v1.RouterService/Chat";
  root.kind = SpanKind::kServer;
  root.context.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  root.context.span_id = *SpanId::FromHex("b7ad6b7169203331");
  root.start_time = absl::FromUnixNanos(1700000000000000000);
  root.end_time = absl::FromUnixNanos(1700000000300000000);
  root.status_code = SpanStatusCode::kOk;

  const std::string body = EncodeOtlpJson(
      {ChildSpan(), root}, {{"service.name", "router"}, {"service.instance.id", "r-1"}},
      {"tiermesh", "0.1.0"});
  const Json j = Json::parse(body);  // throws (fails the test) on invalid JSON
  ASSERT_EQ(j["resourceSpans"].size(), 1u);
  const Json& rs = j["resourceSpans"][0];
  EXPECT_EQ(Attribute(rs["resource"]["attributes"], "service.name"),
            Json({{"stringValue", "router"}}));
  ASSERT_EQ(rs["scopeSpans"].size(), 1u);
  EXPECT_EQ(rs["scopeSpans"][0]["scope"], Json({{"name", "tiermesh"}, {"version", "0.1.0"}}));
  const Json& spans = rs["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), 2u);

  const Json& c = spans[0];
  EXPECT_EQ(c["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(c["spanId"], "00f067aa0ba902b7");
  EXPECT_EQ(c["parentSpanId"], "b7ad6b7169203331");
  EXPECT_EQ(c["traceState"], "congo=t61rcWkgMzE");
  EXPECT_EQ(c["name"], "tiermesh.v1.InferenceService/Generate");
  EXPECT_EQ(c["kind"], 3);  // SPAN_KIND_CLIENT
  EXPECT_EQ(c["startTimeUnixNano"], "1700000000123456789");
  EXPECT_EQ(c["endTimeUnixNano"], "1700000000223456789");
  EXPECT_EQ(Attribute(c["attributes"], "rpc.system"), Json({{"stringValue", "grpc"}}));
  EXPECT_EQ(Attribute(c["attributes"], "tokens"), Json({{"intValue", "9007199254740993"}}));
  EXPECT_EQ(Attribute(c["attributes"], "cost_usd"), Json({{"doubleValue", 0.0125}}));
  EXPECT_EQ(Attribute(c["attributes"], "fallback"), Json({{"boolValue", true}}));
  EXPECT_EQ(Attribute(c["attributes"], "bad"), Json({{"stringValue", "caf\xEF\xBF\xBD"}}));
  EXPECT_EQ(Attribute(c["attributes"], "quoted \"key\""),
            Json({{"stringValue", "line\nbreak \\ \"q\""}}));
  EXPECT_EQ(c["droppedAttributesCount"], 2);
  ASSERT_EQ(c["events"].size(), 1u);
  EXPECT_EQ(c["events"][0]["name"], "first_token");
  EXPECT_EQ(c["events"][0]["timeUnixNano"], "1700000000150000000");
  EXPECT_EQ(Attribute(c["events"][0]["attributes"], "ttft_ms"), Json({{"intValue", "27"}}));
  EXPECT_EQ(c["status"], Json({{"code", 2}, {"message", "UNAVAILABLE: down"}}));

  const Json& r = spans[1];
  EXPECT_EQ(r["kind"], 2);  // SPAN_KIND_SERVER
  EXPECT_FALSE(r.contains("parentSpanId"));
  EXPECT_FALSE(r.contains("traceState"));
  EXPECT_FALSE(r.contains("events"));
  EXPECT_FALSE(r.contains("droppedAttributesCount"));
  EXPECT_EQ(r["status"], Json({{"code", 1}}));
  EXPECT_EQ(r["attributes"], Json::array());
}

TEST(EncodeOtlpJson, NonFiniteDoublesAndEmptyBatches) {
  SpanData span = ChildSpan();
  span.attributes = {{"nan", std::nan("")}, {"inf", -HUGE_VAL}};
  const std::string body = EncodeOtlpJson({span}, {});
  const Json attrs =
      Json::parse(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"];
  EXPECT_EQ(Attribute(attrs, "nan"), Json({{"doubleValue", "NaN"}}));
  EXPECT_EQ(Attribute(attrs, "inf"), Json({{"doubleValue", "-Infinity"}}));

  const std::string empty = EncodeOtlpJson({}, {});
  const Json e = Json::parse(empty);
  EXPECT_EQ(e["resourceSpans"][0]["scopeSpans"][0]["spans"], Json::array());
  EXPECT_EQ(e["resourceSpans"][0]["scopeSpans"][0]["scope"], Json({{"name", "tiermesh"}}));
}

}  // namespace
}  // namespace tiermesh::tracing
