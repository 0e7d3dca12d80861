#include "services/common/tracing/otlp_http_exporter.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tiermesh::tracing {
namespace {

// A collector's answer is small (an ExportTraceServiceResponse); do not
// buffer a misconfigured endpoint's web page.
constexpr size_t kMaxResponseBytes = 64 * 1024;

}  // namespace

OtlpHttpExporter::OtlpHttpExporter(std::shared_ptr<http::HttpTransport> transport,
                                   OtlpHttpExporterOptions options)
    : transport_(std::move(transport)),
      options_(std::move(options)),
      endpoint_for_errors_(http::RedactUrl(options_.endpoint)) {}

absl::Status OtlpHttpExporter::Export(const std::vector<SpanData>& spans) {
  if (spans.empty()) return absl::OkStatus();
  http::HttpRequest request;
  request.method = http::HttpMethod::kPost;
  request.url = options_.endpoint;
  request.headers = options_.headers;
  request.headers.push_back({"Content-Type", "application/json"});
  request.body = EncodeOtlpJson(spans, options_.resource, options_.scope);
  const absl::Time now = options_.clock ? options_.clock() : absl::Now();
  request.deadline = now + options_.timeout;
  request.connect_timeout = std::min(request.connect_timeout, options_.timeout);
  request.max_response_bytes = kMaxResponseBytes;
  absl::StatusOr<http::HttpResponse> response = transport_->Fetch(request);
  if (!response.ok()) {
    return absl::Status(response.status().code(),
                        absl::StrCat("OTLP export to ", endpoint_for_errors_,
                                     " failed: ", response.status().message()));
  }
  if (response->status_code < 200 || response->status_code > 299) {
    return absl::Status(http::HttpStatusToCode(response->status_code),
                        absl::StrCat("OTLP export to ", endpoint_for_errors_, " failed: HTTP ",
                                     response->status_code));
  }
  return absl::OkStatus();
}

}  // namespace tiermesh::tracing
