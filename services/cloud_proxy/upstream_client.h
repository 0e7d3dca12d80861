// One upstream call to a provider: adapter (request/response mapping) +
// HttpTransport (I/O) + SSE decoding, with the error, usage and key-hygiene
// rules of the cloud-proxy. Never retries (the router owns retries).
//
//   UpstreamClient client(transport, [] { return absl::Now(); });
//   UpstreamCall call{adapter, &model, key, deadline, cancel_token};
//   absl::StatusOr<GenerateResponse> r = client.Generate(call, request);
//   UpstreamStreamResult s = client.GenerateStream(call, request,
//       [&](const StreamUpdate& u) { return writer.Write(u.delta); });  // false: stop (cancel)
//   s.status;  s.usage;   // usage is filled even when the stream failed
//
// Guarantees:
// - The key travels only in the adapter's auth header; every returned status
//   is passed through RedactStatus with the key.
// - A streaming answer is OK only when the provider's stream was complete; a
//   cut, stall, reset, malformed chunk or in-stream error is non-OK, and the
//   result still carries the usage so far (estimated where the provider sent
//   none) and the finish reason seen.
// - Cancellation (the token, or on_update returning false) aborts the
//   transfer, which closes the upstream connection.
// - Each call is a kClient span (child of call.parent) whose `traceparent`
//   goes to the provider as an HTTP header; the span holds the provider,
//   model, redacted URL, HTTP status, usage and the (redacted) error, never a
//   key or a header value.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_UPSTREAM_CLIENT_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_UPSTREAM_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "services/cloud_proxy/config.h"
#include "services/cloud_proxy/provider.h"
#include "services/common/http/cancellation.h"
#include "services/common/http/http_client.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/tracer.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::cloud {

struct UpstreamCall {
  const ProviderAdapter* adapter = nullptr;
  const ModelConfig* model = nullptr;
  std::string key;  // the provider key for this call (operator's or BYOK)
  absl::Time deadline = absl::InfiniteFuture();
  std::shared_ptr<tiermesh::http::CancellationToken> cancel;  // may be null
  // The span this call belongs to (the gRPC server span); invalid: a new trace.
  tiermesh::tracing::SpanContext parent = {};
};

struct UpstreamStreamResult {
  absl::Status status;
  tiermesh::v1::Usage usage;  // always filled
  tiermesh::v1::FinishReason finish_reason = tiermesh::v1::FINISH_REASON_UNSPECIFIED;
  std::string model;  // the provider's name for it, when sent
  absl::optional<absl::Time> first_token_at;
  bool any_output = false;  // a delta was handed to on_update
};

class UpstreamClient {
 public:
  using Clock = std::function<absl::Time()>;
  // Largest error body read from a failed streaming answer.
  static constexpr size_t kMaxErrorBodyBytes = 64 << 10;

  // `tracer`: a kClient span per upstream call (Noop: none); its traceparent
  // goes to the provider as an HTTP header either way.
  UpstreamClient(tiermesh::http::HttpTransport* transport, Clock clock,
                 tiermesh::tracing::Tracer tracer = tiermesh::tracing::Tracer::Noop())
      : transport_(transport), clock_(std::move(clock)), tracer_(std::move(tracer)) {}

  [[nodiscard]] absl::StatusOr<tiermesh::v1::GenerateResponse> Generate(
      const UpstreamCall& call, const tiermesh::v1::GenerateRequest& request) const;

  // Streams; `on_update` runs on this thread for every event that changed
  // something (and for the final flush). Return false from it to cancel.
  UpstreamStreamResult GenerateStream(
      const UpstreamCall& call, const tiermesh::v1::GenerateRequest& request,
      const std::function<bool(const StreamUpdate&)>& on_update) const;

 private:
  [[nodiscard]] absl::StatusOr<tiermesh::http::HttpRequest> MakeHttpRequest(
      const UpstreamCall& call, const tiermesh::v1::GenerateRequest& request, bool stream) const;

  // The upstream call's span, injected into the request's headers.
  tiermesh::tracing::Span StartSpan(const UpstreamCall& call, bool stream,
                                    tiermesh::http::HttpRequest* http) const;

  tiermesh::http::HttpTransport* transport_;
  Clock clock_;
  tiermesh::tracing::Tracer tracer_;
};

// The Status for a transport error returned by HttpTransport (see
// http_client.h), as MapTransportFailure classifies it.
[[nodiscard]] absl::Status MapTransportStatus(absl::string_view provider,
                                              const absl::Status& transport_status);

// Headers in the cloud-proxy's form.
Headers ToHeaders(const tiermesh::http::HttpHeaders& headers);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_UPSTREAM_CLIENT_H_
