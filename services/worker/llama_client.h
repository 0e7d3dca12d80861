// The worker's client for one llama-server: chat completions (unary and streamed) and the
// health/load endpoints, over an injected HttpTransport. It adds nothing of its own on top of
// the transport: no retries (the router owns them), the caller's deadline and cancellation go
// straight into the HTTP request, so a cancelled gRPC call aborts the HTTP request at once and
// llama-server frees the slot.
//
//   LlamaClient client(transport.get(), "http://127.0.0.1:8081", api_key);
//   LlamaCallOptions call;
//   call.deadline = grpc_deadline;
//   call.cancel = cancellation_token;      // cancelled when the gRPC caller goes away
//   call.traceparent = span.traceparent();
//   StreamOutcome outcome;
//   absl::Status status = client.Stream(request, call, [&](const StreamDelta& d) {
//     return writer.Write(d);              // false: the caller went away -> CANCELLED
//   }, &outcome);                          // outcome.usage: usage so far, even on error
//
// Stream() returns OK only for a complete answer (finish_reason and [DONE] seen); a cut,
// stall, malformed chunk or upstream error after deltas were delivered is an error.
#ifndef TIERMESH_SERVICES_WORKER_LLAMA_CLIENT_H_
#define TIERMESH_SERVICES_WORKER_LLAMA_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "services/common/http/cancellation.h"
#include "services/common/http/http_client.h"
#include "services/worker/llama_api.h"
#include "services/worker/llama_load.h"
#include "services/worker/llama_stream.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::worker {

struct LlamaCallOptions {
  absl::Time deadline = absl::InfiniteFuture();
  // Streams: fail (UNAVAILABLE, "stalled") when no byte arrives for this long. llama-server
  // sends nothing while a request waits for a slot, so keep it above the admission wait.
  absl::Duration idle_timeout = absl::InfiniteDuration();
  std::shared_ptr<http::CancellationToken> cancel;
  std::string traceparent;  // W3C trace context, forwarded as the `traceparent` header
};

class LlamaClient {
 public:
  // `transport` must outlive the client. `base_url` is "http://host:port" (no trailing slash);
  // `api_key` may be empty (no Authorization header).
  LlamaClient(http::HttpTransport* transport, std::string base_url, std::string api_key);

  // POST /v1/chat/completions, unary.
  [[nodiscard]] absl::StatusOr<LlamaCompletion> Complete(
      const tiermesh::v1::GenerateRequest& request, const LlamaCallOptions& options) const;

  // POST /v1/chat/completions with stream=true. `on_delta` gets every non-empty delta (valid
  // UTF-8) in order; returning false stops the stream (CANCELLED). `outcome` (optional)
  // receives what is known when the call returns, also on error.
  [[nodiscard]] absl::Status Stream(const tiermesh::v1::GenerateRequest& request,
                                    const LlamaCallOptions& options,
                                    const std::function<bool(const StreamDelta&)>& on_delta,
                                    StreamOutcome* outcome) const;

  // GET /health: the HTTP status (200 ready, 503 loading). Transport errors are returned.
  [[nodiscard]] absl::StatusOr<int> Health(const LlamaCallOptions& options) const;

  [[nodiscard]] absl::StatusOr<SlotsSnapshot> Slots(const LlamaCallOptions& options) const;
  [[nodiscard]] absl::StatusOr<PropsSnapshot> Props(const LlamaCallOptions& options) const;
  // Needs --metrics on the server (otherwise llama-server answers 501: UNIMPLEMENTED).
  [[nodiscard]] absl::StatusOr<LlamaMetrics> Metrics(const LlamaCallOptions& options) const;

  const std::string& base_url() const { return base_url_; }

 private:
  http::HttpRequest NewRequest(http::HttpMethod method, absl::string_view path,
                               const LlamaCallOptions& options) const;
  // GET `path`; the body of a 200 answer, else the mapped error.
  absl::StatusOr<std::string> GetBody(absl::string_view path,
                                      const LlamaCallOptions& options) const;

  http::HttpTransport* transport_;
  std::string base_url_;
  std::string api_key_;
};

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_LLAMA_CLIENT_H_
