// Builds a service's Tracer from the standard OpenTelemetry environment
// variables, read through an injected lookup (config::EnvLookup):
//
//   OTEL_EXPORTER_OTLP_ENDPOINT         base URL; traces go to <base>/v1/traces.
//                                       Unset (and no TRACES_ENDPOINT): tracing
//                                       is disabled: a no-op tracer, no thread.
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full traces URL, used as is (wins)
//   OTEL_EXPORTER_OTLP_[TRACES_]HEADERS "k=v,k2=v2" (values URL-encoded)
//   OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT export timeout in ms (default 10000)
//   OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL only "http/json" is supported
//   OTEL_SERVICE_NAME                   default: the name main passes
//   OTEL_RESOURCE_ATTRIBUTES            "k=v,..." extra resource attributes
//   OTEL_TRACES_SAMPLER                 parentbased_traceidratio (default),
//                                       traceidratio, [parentbased_]always_on|off
//   OTEL_TRACES_SAMPLER_ARG             ratio in [0, 1] (default 1)
//   OTEL_TRACES_EXPORTER                otlp (default) or none
//   OTEL_SDK_DISABLED                   true: disabled
//   OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
//   OTEL_BSP_SCHEDULE_DELAY (ms)        batch processor settings
// An empty value counts as unset (as the OTel spec says). A malformed value
// is an error naming the variable: a service exits at startup rather than
// silently tracing differently than asked.
//
//   TIERMESH_ASSIGN_OR_RETURN(tracing::TracingConfig tc,
//                             tracing::TracingConfigFromEnv(env, "router"));
//   TIERMESH_ASSIGN_OR_RETURN(tracing::Tracer tracer,
//                             tracing::NewTracer(tc, http_transport, logger));
//   ...
//   (void)tracer.Shutdown(absl::Seconds(5));   // after the server drained
#ifndef TIERMESH_SERVICES_COMMON_TRACING_TRACING_CONFIG_H_
#define TIERMESH_SERVICES_COMMON_TRACING_TRACING_CONFIG_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "services/common/config/env.h"
#include "services/common/http/http_client.h"
#include "services/common/logging/logger.h"
#include "services/common/tracing/batch_span_processor.h"
#include "services/common/tracing/span_data.h"
#include "services/common/tracing/tracer.h"

namespace tiermesh::tracing {

struct TracingConfig {
  bool enabled = false;
  std::string traces_endpoint;  // full URL
  http::HttpHeaders headers;
  absl::Duration export_timeout = absl::Seconds(10);
  std::string service_name;
  Attributes resource;  // service.name first, then OTEL_RESOURCE_ATTRIBUTES
  SamplerConfig sampler;
  size_t max_queue_size = 2048;
  size_t max_export_batch_size = 512;
  absl::Duration schedule_delay = absl::Seconds(5);
};

[[nodiscard]] absl::StatusOr<TracingConfig> TracingConfigFromEnv(
    const config::EnvLookup& env, absl::string_view default_service_name);

// A no-op tracer when !config.enabled (transport may then be null);
// otherwise OtlpHttpExporter -> BatchSpanProcessor -> Tracer.
[[nodiscard]] absl::StatusOr<Tracer> NewTracer(const TracingConfig& config,
                                               std::shared_ptr<http::HttpTransport> transport,
                                               logging::Logger logger);

// What a service's main does: TracingConfigFromEnv, a libcurl transport only
// when tracing is enabled, then NewTracer. Errors name the bad variable.
[[nodiscard]] absl::StatusOr<Tracer> NewTracerFromEnv(const config::EnvLookup& env,
                                                      absl::string_view default_service_name,
                                                      logging::Logger logger);

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_TRACING_CONFIG_H_
