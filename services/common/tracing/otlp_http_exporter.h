// Sends span batches to an OpenTelemetry collector (or Jaeger, Tempo, ...)
// with OTLP over HTTP, JSON encoding: POST <endpoint> with
// Content-Type: application/json and a deadline, through the shared
// HttpTransport (services/common/http).
//
//   OtlpHttpExporterOptions options;
//   options.endpoint = "http://otel-collector:4318/v1/traces";
//   options.resource = {{"service.name", "router"}};
//   auto exporter = std::make_unique<OtlpHttpExporter>(transport, std::move(options));
//
// Any non-2xx answer is an error (the processor drops the batch and counts
// it); there are no retries (see batch_span_processor.h for why). Errors name
// the endpoint without its query string or credentials, never a header
// value (OTEL_EXPORTER_OTLP_HEADERS often holds an API key).
#ifndef TIERMESH_SERVICES_COMMON_TRACING_OTLP_HTTP_EXPORTER_H_
#define TIERMESH_SERVICES_COMMON_TRACING_OTLP_HTTP_EXPORTER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "services/common/http/http_client.h"
#include "services/common/tracing/exporter.h"
#include "services/common/tracing/otlp_json.h"

namespace tiermesh::tracing {

struct OtlpHttpExporterOptions {
  // The full traces URL, e.g. "http://localhost:4318/v1/traces".
  std::string endpoint;
  // Extra request headers (authentication for hosted collectors).
  http::HttpHeaders headers;
  // Per-export deadline.
  absl::Duration timeout = absl::Seconds(10);
  // Resource attributes of every batch (service.name, ...).
  Attributes resource;
  InstrumentationScope scope;
  // Default: absl::Now (for the deadline).
  std::function<absl::Time()> clock;
};

class OtlpHttpExporter final : public SpanExporter {
 public:
  OtlpHttpExporter(std::shared_ptr<http::HttpTransport> transport, OtlpHttpExporterOptions options);
  [[nodiscard]] absl::Status Export(const std::vector<SpanData>& spans) override;

 private:
  const std::shared_ptr<http::HttpTransport> transport_;
  const OtlpHttpExporterOptions options_;
  const std::string endpoint_for_errors_;
};

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_OTLP_HTTP_EXPORTER_H_
