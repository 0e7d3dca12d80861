#include "services/common/tracing/otlp_http_exporter.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/status/status_matchers.h"
#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::tracing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::StatusIs;

using ::tiermesh::tracing::testing::FakeTransport;

SpanData OneSpan() {
  SpanData span;
  span.name = "attempt";
  span.context.trace_id = *TraceId::FromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  span.context.span_id = *SpanId::FromHex("00f067aa0ba902b7");
  span.start_time = absl::FromUnixSeconds(1700000000);
  span.end_time = span.start_time + absl::Milliseconds(3);
  return span;
}

OtlpHttpExporterOptions Options() {
  OtlpHttpExporterOptions options;
  options.endpoint = "http://user:pw@collector:4318/v1/traces?tenant=t";
  options.headers = {{"x-honeycomb-team", "secret-team-key"}};
  options.timeout = absl::Seconds(3);
  options.resource = {{"service.name", "worker"}};
  options.clock = [] { return absl::FromUnixSeconds(1800000000); };
  return options;
}

TEST(OtlpHttpExporter, PostsJsonWithHeadersAndDeadline) {
  auto transport = std::make_shared<FakeTransport>();
  OtlpHttpExporter exporter(transport, Options());
  ASSERT_OK(exporter.Export({OneSpan(), OneSpan()}));
  const auto requests = transport->Requests();
  ASSERT_EQ(requests.size(), 1u);
  const http::HttpRequest& r = requests[0];
  EXPECT_EQ(r.method, http::HttpMethod::kPost);
  EXPECT_EQ(r.url, "http://user:pw@collector:4318/v1/traces?tenant=t");
  EXPECT_EQ(http::FindHeader(r.headers, "content-type"), "application/json");
  EXPECT_EQ(http::FindHeader(r.headers, "x-honeycomb-team"), "secret-team-key");
  EXPECT_EQ(r.deadline, absl::FromUnixSeconds(1800000003));
  const nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 2u);
  EXPECT_EQ(body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "worker");
}

TEST(OtlpHttpExporter, NothingToSendSendsNothing) {
  auto transport = std::make_shared<FakeTransport>();
  OtlpHttpExporter exporter(transport, Options());
  ASSERT_OK(exporter.Export({}));
  EXPECT_TRUE(transport->Requests().empty());
}

TEST(OtlpHttpExporter, HttpErrorsAndTransportErrorsNeverLeakSecrets) {
  auto transport = std::make_shared<FakeTransport>();
  OtlpHttpExporter exporter(transport, Options());
  transport->status_code_ = 503;
  absl::Status s = exporter.Export({OneSpan()});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable,
                          "OTLP export to http://collector:4318/v1/traces failed: HTTP 503"));
  transport->status_code_ = 401;
  EXPECT_THAT(exporter.Export({OneSpan()}),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("HTTP 401")));
  transport->error_ = absl::UnavailableError("connection refused");
  s = exporter.Export({OneSpan()});
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("connection refused")));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("pw")));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("secret-team-key")));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("tenant")));
}

}  // namespace
}  // namespace tiermesh::tracing
