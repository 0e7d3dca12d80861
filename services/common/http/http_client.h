// The HTTP client used for every outgoing HTTP call (worker -> llama-server,
// cloud-proxy -> providers, the OTLP exporter). Services depend on the
// HttpTransport interface and get the libcurl implementation injected by main,
// so tests can substitute a fake.
//
//   TIERMESH_ASSIGN_OR_RETURN(std::unique_ptr<HttpTransport> http, NewCurlHttpTransport({}));
//   HttpRequest request;
//   request.method = HttpMethod::kPost;
//   request.url = "https://api.example.com/v1/chat/completions";
//   request.headers = {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
//   request.body = json;
//   request.deadline = absl::Now() + absl::Seconds(60);
//   request.idle_timeout = absl::Seconds(20);   // a stalled stream fails early
//   request.cancel = token;                      // Cancel() aborts within milliseconds
//   SseDecoder sse;
//   HttpStreamCallbacks callbacks;
//   callbacks.on_head = [&](const HttpResponseHead& head) { return head.status_code == 200; };
//   callbacks.on_body = [&](absl::string_view chunk) { return sse.Feed(chunk, on_event).ok(); };
//   absl::Status status = http->Send(request, callbacks);
//
// Error codes returned by Send/Fetch (the HTTP status itself is never an error
// here: read it from the head; HttpStatusToCode maps it when needed):
//   UNAVAILABLE        connect refused/reset, DNS failure, TLS failure, connection
//                      cut before the response was complete, connect timeout, and
//                      a stall longer than idle_timeout (message says "stalled")
//   DEADLINE_EXCEEDED  request.deadline passed (also when it already had)
//   CANCELLED          request.cancel was cancelled, or a callback returned false
//   RESOURCE_EXHAUSTED Fetch: body larger than max_response_bytes
//   INVALID_ARGUMENT   malformed URL, unsupported scheme, CR/LF in a header
// Error messages name the method, scheme, host and path only: never a header
// value (API keys travel in headers), the query string or URL credentials.
#ifndef TIERMESH_SERVICES_COMMON_HTTP_HTTP_CLIENT_H_
#define TIERMESH_SERVICES_COMMON_HTTP_HTTP_CLIENT_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

#include "services/common/http/cancellation.h"

namespace tiermesh::http {

enum class HttpMethod { kGet, kPost, kDelete };
absl::string_view HttpMethodName(HttpMethod method);

struct HttpHeader {
  std::string name;
  std::string value;
};
using HttpHeaders = std::vector<HttpHeader>;

// The value of the first header called `name` (ASCII case-insensitive).
absl::optional<std::string> FindHeader(const HttpHeaders& headers, absl::string_view name);

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string url;  // http:// or https:// only
  HttpHeaders headers;
  std::string body;  // sent for POST (and DELETE when not empty)
  // Whole-request deadline, connect to last byte.
  absl::Time deadline = absl::InfiniteFuture();
  // Fails the request (UNAVAILABLE, "stalled") when no byte arrives for this
  // long, from the start of the request on. InfiniteDuration: off.
  absl::Duration idle_timeout = absl::InfiniteDuration();
  // Limit for establishing the connection (TCP + TLS), within the deadline.
  absl::Duration connect_timeout = absl::Seconds(10);
  // Optional; the transport checks it and is woken up by it.
  std::shared_ptr<CancellationToken> cancel;
  // Fetch() only: the largest body it buffers.
  size_t max_response_bytes = 64 << 20;
};

// Status line and headers of the final (non-1xx) response.
struct HttpResponseHead {
  int status_code = 0;
  HttpHeaders headers;
  absl::optional<std::string> Header(absl::string_view name) const {
    return FindHeader(headers, name);
  }
};

struct HttpResponse {
  int status_code = 0;
  HttpHeaders headers;
  std::string body;
  absl::optional<std::string> Header(absl::string_view name) const {
    return FindHeader(headers, name);
  }
};

struct HttpStreamCallbacks {
  // Called once, before the first body chunk (at the end for an empty body).
  // Return false to abort the transfer. May be empty.
  std::function<bool(const HttpResponseHead&)> on_head;
  // Called with each body chunk as it arrives, in order, on the thread that
  // called Send. Return false to abort the transfer. May be empty.
  std::function<bool(absl::string_view chunk)> on_body;
};

// Thread-safe: Send may be called from many threads at once.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Performs `request`, streaming the response to `callbacks`. OK means the
  // whole response arrived (whatever its HTTP status). Blocks until done,
  // failed, past the deadline, stalled or cancelled.
  [[nodiscard]] virtual absl::Status Send(const HttpRequest& request,
                                          const HttpStreamCallbacks& callbacks) = 0;

  // Performs `request` and buffers the response (up to
  // request.max_response_bytes, else RESOURCE_EXHAUSTED).
  [[nodiscard]] absl::StatusOr<HttpResponse> Fetch(const HttpRequest& request);
};

struct CurlTransportOptions {
  // Idle pooled connections kept for reuse (each pooled handle keeps its
  // connections alive); more concurrent requests are served by extra handles
  // that are freed afterwards.
  size_t max_idle_handles = 16;
  // CA bundle file for TLS verification; empty: the system store. TLS peer and
  // host verification are always on.
  std::string ca_bundle_path;
  // Unset: libcurl's usual proxy environment variables apply. Set: this proxy
  // URL; "" means no proxy at all (hermetic tests use that).
  absl::optional<std::string> proxy;
  std::string user_agent = "tiermesh/0.1";
};

// The libcurl implementation. Initialises libcurl once per process (safely,
// on first use). Requests still in flight must finish before it is destroyed.
[[nodiscard]] absl::StatusOr<std::unique_ptr<HttpTransport>> NewCurlHttpTransport(
    CurlTransportOptions options);
// NewCurlHttpTransport with no proxy at all, whatever the environment says:
// for loopback peers (a local llama-server, the tests' fake servers).
[[nodiscard]] absl::StatusOr<std::unique_ptr<HttpTransport>> NewLoopbackHttpTransport();

// The canonical code for an HTTP error status (for callers that turn a non-2xx
// answer into a Status): 400 INVALID_ARGUMENT, 401 UNAUTHENTICATED,
// 403 PERMISSION_DENIED, 404 NOT_FOUND, 408/504 DEADLINE_EXCEEDED, 409 ABORTED,
// 413 INVALID_ARGUMENT, 429 RESOURCE_EXHAUSTED, 499 CANCELLED, 501 UNIMPLEMENTED,
// 502/503 UNAVAILABLE, other 5xx INTERNAL, other 4xx FAILED_PRECONDITION,
// 2xx OK, anything else UNKNOWN.
absl::StatusCode HttpStatusToCode(int http_status);

// "scheme://host[:port]/path" of `url`: what error messages and logs may show
// (credentials, query and fragment dropped).
std::string RedactUrl(absl::string_view url);

}  // namespace tiermesh::http

#endif  // TIERMESH_SERVICES_COMMON_HTTP_HTTP_CLIENT_H_
