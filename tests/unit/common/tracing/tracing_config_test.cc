#include "services/common/tracing/tracing_config.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/status/status_matchers.h"
#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::tracing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::tiermesh::testing::StatusIs;
using ::tiermesh::tracing::testing::FakeTransport;

absl::StatusOr<TracingConfig> FromEnv(std::map<std::string, std::string> vars) {
  return TracingConfigFromEnv(config::MapEnv(std::move(vars)), "router");
}

TEST(TracingConfigFromEnv, UnsetEndpointDisablesTracing) {
  ASSERT_OK_AND_ASSIGN(const TracingConfig c, FromEnv({}));
  EXPECT_FALSE(c.enabled);
  EXPECT_EQ(c.service_name, "router");
  ASSERT_OK_AND_ASSIGN(const TracingConfig empty, FromEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", " "}}));
  EXPECT_FALSE(empty.enabled);  // empty counts as unset
  // A disabled tracer spawns nothing and needs no transport.
  ASSERT_OK_AND_ASSIGN(const Tracer tracer, NewTracer(c, nullptr, logging::Logger::Discard()));
  EXPECT_FALSE(tracer.enabled());
}

struct EndpointCase {
  std::map<std::string, std::string> env;
  std::string want;
};

TEST(TracingConfigFromEnv, Endpoints) {
  const EndpointCase cases[] = {
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318"}}, "http://otel:4318/v1/traces"},
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/"}}, "http://otel:4318/v1/traces"},
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://api.honeycomb.io"}},
       "https://api.honeycomb.io/v1/traces"},
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel:4318/prefix"}},
       "http://otel:4318/prefix/v1/traces"},
      // The signal-specific URL is used as is, and wins.
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:9999/custom"}},
       "http://b:9999/custom"},
  };
  for (const EndpointCase& c : cases) {
    ASSERT_OK_AND_ASSIGN(const TracingConfig got, FromEnv(c.env));
    EXPECT_TRUE(got.enabled);
    EXPECT_EQ(got.traces_endpoint, c.want);
  }
}

TEST(TracingConfigFromEnv, SamplerTable) {
  struct Case {
    const char* sampler;  // nullptr: unset
    const char* arg;      // nullptr: unset
    bool parent_based;
    double ratio;
  };
  const Case cases[] = {
      {nullptr, nullptr, true, 1.0},
      {nullptr, "0.25", true, 0.25},
      {nullptr, "0", true, 0.0},
      {nullptr, "1", true, 1.0},
      {"parentbased_traceidratio", "0.5", true, 0.5},
      {"traceidratio", "0.5", false, 0.5},
      {"always_on", nullptr, false, 1.0},
      {"always_off", nullptr, false, 0.0},
      {"parentbased_always_on", nullptr, true, 1.0},
      {"ParentBased_Always_Off", nullptr, true, 0.0},
  };
  for (const Case& c : cases) {
    std::map<std::string, std::string> env = {{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://o:4318"}};
    if (c.sampler != nullptr) env["OTEL_TRACES_SAMPLER"] = c.sampler;
    if (c.arg != nullptr) env["OTEL_TRACES_SAMPLER_ARG"] = c.arg;
    ASSERT_OK_AND_ASSIGN(const TracingConfig got, FromEnv(env));
    EXPECT_EQ(got.sampler.parent_based, c.parent_based) << (c.sampler ? c.sampler : "-");
    EXPECT_EQ(got.sampler.ratio, c.ratio) << (c.sampler ? c.sampler : "-");
  }
}

TEST(TracingConfigFromEnv, EverythingElse) {
  ASSERT_OK_AND_ASSIGN(
      const TracingConfig c,
      FromEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://o:4318"},
               {"OTEL_SERVICE_NAME", "router-eu"},
               {"OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored, deployment.environment=prod,team=llm%20infra"},
               {"OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=abc%3D%3D,x-tenant = t1"},
               {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"},
               {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
               {"OTEL_BSP_MAX_QUEUE_SIZE", "100"},
               {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10"},
               {"OTEL_BSP_SCHEDULE_DELAY", "250"}}));
  EXPECT_EQ(c.service_name, "router-eu");
  EXPECT_THAT(c.resource, ElementsAre(Pair("service.name", AttributeValue("router-eu")),
                                      Pair("deployment.environment", AttributeValue("prod")),
                                      Pair("team", AttributeValue("llm infra")),
                                      Pair("telemetry.sdk.name", AttributeValue("tiermesh")),
                                      Pair("telemetry.sdk.language", AttributeValue("cpp"))));
  ASSERT_EQ(c.headers.size(), 2u);
  EXPECT_EQ(c.headers[0].name, "x-api-key");
  EXPECT_EQ(c.headers[0].value, "abc==");
  EXPECT_EQ(c.headers[1].name, "x-tenant");
  EXPECT_EQ(c.headers[1].value, "t1");
  EXPECT_EQ(c.export_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(c.max_queue_size, 100u);
  EXPECT_EQ(c.max_export_batch_size, 10u);
  EXPECT_EQ(c.schedule_delay, absl::Milliseconds(250));

  ASSERT_OK_AND_ASSIGN(const TracingConfig from_attrs,
                       FromEnv({{"OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"}}));
  EXPECT_EQ(from_attrs.service_name, "from-attrs");
}

TEST(TracingConfigFromEnv, SwitchesOff) {
  ASSERT_OK_AND_ASSIGN(const TracingConfig off,
                       FromEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://o:4318"},
                                {"OTEL_SDK_DISABLED", "TRUE"},
                                {"OTEL_TRACES_SAMPLER_ARG", "not even checked"}}));
  EXPECT_FALSE(off.enabled);
  ASSERT_OK_AND_ASSIGN(const TracingConfig none,
                       FromEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://o:4318"},
                                {"OTEL_TRACES_EXPORTER", "none"}}));
  EXPECT_FALSE(none.enabled);
}

struct ErrorCase {
  std::map<std::string, std::string> env;
  const char* error;
};

TEST(TracingConfigFromEnv, BadValuesAreErrorsNamingTheVariable) {
  const ErrorCase cases[] = {
      {{{"OTEL_TRACES_SAMPLER_ARG", "1.5"}}, "OTEL_TRACES_SAMPLER_ARG: expected a ratio in [0, 1]"},
      {{{"OTEL_TRACES_SAMPLER_ARG", "-0.1"}}, "OTEL_TRACES_SAMPLER_ARG"},
      {{{"OTEL_TRACES_SAMPLER_ARG", "half"}}, "OTEL_TRACES_SAMPLER_ARG"},
      {{{"OTEL_TRACES_SAMPLER_ARG", "nan"}}, "OTEL_TRACES_SAMPLER_ARG"},
      {{{"OTEL_TRACES_SAMPLER", "jaeger_remote"}}, "OTEL_TRACES_SAMPLER: unsupported sampler"},
      {{{"OTEL_EXPORTER_OTLP_ENDPOINT", "otel:4318"}},
       "OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL"},
      {{{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "grpc://otel:4317"}},
       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
      {{{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
       "OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol 'grpc'"},
      {{{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"}},
       "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
      {{{"OTEL_EXPORTER_OTLP_HEADERS", "a=1,novalue"}},
       "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not of the form key=value"},
      {{{"OTEL_EXPORTER_OTLP_HEADERS", "a=%zz"}}, "entry 1 has a malformed %-escape"},
      {{{"OTEL_EXPORTER_OTLP_TIMEOUT", "10s"}}, "OTEL_EXPORTER_OTLP_TIMEOUT: expected an integer"},
      {{{"OTEL_EXPORTER_OTLP_TIMEOUT", "0"}}, "OTEL_EXPORTER_OTLP_TIMEOUT"},
      {{{"OTEL_BSP_MAX_QUEUE_SIZE", "0"}}, "OTEL_BSP_MAX_QUEUE_SIZE"},
      {{{"OTEL_BSP_MAX_QUEUE_SIZE", "10"}, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20"}},
       "must not exceed OTEL_BSP_MAX_QUEUE_SIZE"},
      {{{"OTEL_BSP_SCHEDULE_DELAY", "-5"}}, "OTEL_BSP_SCHEDULE_DELAY"},
      {{{"OTEL_SDK_DISABLED", "yes"}}, "OTEL_SDK_DISABLED"},
      {{{"OTEL_TRACES_EXPORTER", "zipkin"}}, "OTEL_TRACES_EXPORTER: unsupported exporter"},
      {{{"OTEL_RESOURCE_ATTRIBUTES", "=x"}}, "OTEL_RESOURCE_ATTRIBUTES: entry 1"},
  };
  for (const ErrorCase& c : cases) {
    std::map<std::string, std::string> env = c.env;
    env.emplace("OTEL_EXPORTER_OTLP_ENDPOINT", "http://o:4318");
    EXPECT_THAT(FromEnv(env), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.error;
  }
}

TEST(TracingConfigFromEnv, HeaderErrorsNeverShowValues) {
  absl::StatusOr<TracingConfig> got =
      FromEnv({{"OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cret,junk"}});
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(std::string(got.status().message()), Not(HasSubstr("s3cret")));
  absl::StatusOr<TracingConfig> url =
      FromEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:s3cret@host/x?token=t"}});
  ASSERT_FALSE(url.ok());
  EXPECT_THAT(std::string(url.status().message()), Not(HasSubstr("s3cret")));
}

TEST(NewTracer, EnabledTracerExportsThroughTheTransport) {
  ASSERT_OK_AND_ASSIGN(const TracingConfig c,
                       FromEnv({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://o:4318"},
                                {"OTEL_EXPORTER_OTLP_HEADERS", "x-team=t"}}));
  EXPECT_THAT(NewTracer(c, nullptr, logging::Logger::Discard()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("transport")));

  auto transport = std::make_shared<FakeTransport>();
  ASSERT_OK_AND_ASSIGN(const Tracer tracer, NewTracer(c, transport, logging::Logger::Discard()));
  ASSERT_TRUE(tracer.enabled());
  tracer.StartSpan("hello", SpanKind::kServer).End();
  ASSERT_OK(tracer.Shutdown(absl::Seconds(30)));
  const auto requests = transport->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].url, "http://o:4318/v1/traces");
  EXPECT_EQ(http::FindHeader(requests[0].headers, "x-team"), "t");
  const nlohmann::json body = nlohmann::json::parse(requests[0].body);
  const nlohmann::json& span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["name"], "hello");
  EXPECT_EQ(body["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "router");
  const TracerStats stats = tracer.Stats();
  EXPECT_EQ(stats.spans_started, 1u);
  EXPECT_EQ(stats.processor.spans_exported, 1u);
}

}  // namespace
}  // namespace tiermesh::tracing
