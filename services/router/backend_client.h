// The router's view of the services it calls: one InferenceService endpoint
// (worker or cloud-proxy replica) and the classifier, as small interfaces so
// that the executor and RouterService are tested with in-memory fakes and run
// over gRPC channels in production.
//
//   GrpcBackendClientFactory backends;                   // main: one per process
//   std::shared_ptr<BackendClient> b = backends.ForEndpoint("127.0.0.1:50052");
//   CallOptions call;
//   call.deadline = absl::Now() + absl::Seconds(30);     // derived from the caller's
//   call.request_id = "req-1";
//   absl::StatusOr<v1::GenerateResponse> r = b->Generate(request, call);
//
// Every call carries a deadline, the request id (x-tiermesh-request-id), the
// trace context (traceparent) and, when set, the caller's own provider key
// (x-tiermesh-provider-key). The executor sets the key for cloud backends
// only: a local worker never sees it. A backend's error reason
// ("context_length_exceeded", "content_policy") arrives in the
// x-tiermesh-error-reason trailer and is attached with WithReason.
#ifndef TIERMESH_SERVICES_ROUTER_BACKEND_CLIENT_H_
#define TIERMESH_SERVICES_ROUTER_BACKEND_CLIENT_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

#include "tiermesh/v1/classifier.grpc.pb.h"
#include "tiermesh/v1/inference.grpc.pb.h"

namespace tiermesh::router {

inline constexpr char kRequestIdMetadata[] = "x-tiermesh-request-id";
inline constexpr char kProviderKeyMetadata[] = "x-tiermesh-provider-key";

// What travels with one outgoing call.
struct CallOptions {
  // Absolute; absl::InfiniteFuture() is refused (every call needs one).
  absl::Time deadline = absl::InfiniteFuture();
  std::string request_id;
  // W3C traceparent / tracestate of the span this call belongs to; empty: none.
  std::string traceparent;
  std::string tracestate;
  // The caller's own provider key (byok); empty: none. Never logged.
  std::string provider_key;
};

// Fills `context` from `call`: deadline and metadata. INVALID_ARGUMENT when
// the call has no finite deadline.
[[nodiscard]] absl::Status PrepareClientContext(const CallOptions& call,
                                                grpc::ClientContext* context);

// A finished call's status as absl::Status, with the backend's error reason
// (x-tiermesh-error-reason trailer) attached when there is one.
absl::Status StatusFromCall(const grpc::Status& status, const grpc::ClientContext& context);

// One InferenceService endpoint. Thread-safe.
class BackendClient {
 public:
  // Return false to stop reading (the call is then cancelled).
  using StreamHandler = std::function<bool(const v1::GenerateStreamResponse&)>;

  virtual ~BackendClient() = default;
  [[nodiscard]] virtual absl::StatusOr<v1::GenerateResponse> Generate(
      const v1::GenerateRequest& request, const CallOptions& call) = 0;
  // Calls `on_event` for every message; returns the stream's final status.
  [[nodiscard]] virtual absl::Status GenerateStream(const v1::GenerateStreamRequest& request,
                                                    const CallOptions& call,
                                                    const StreamHandler& on_event) = 0;
  [[nodiscard]] virtual absl::StatusOr<v1::GetLoadResponse> GetLoad(
      const v1::GetLoadRequest& request, const CallOptions& call) = 0;
};

// Hands out the client of an endpoint ("host:port"); clients are cached.
class BackendClientFactory {
 public:
  virtual ~BackendClientFactory() = default;
  virtual std::shared_ptr<BackendClient> ForEndpoint(const std::string& endpoint) = 0;
};

// BackendClient over a gRPC channel.
class GrpcBackendClient final : public BackendClient {
 public:
  explicit GrpcBackendClient(std::shared_ptr<grpc::Channel> channel);
  absl::StatusOr<v1::GenerateResponse> Generate(const v1::GenerateRequest& request,
                                                const CallOptions& call) override;
  absl::Status GenerateStream(const v1::GenerateStreamRequest& request, const CallOptions& call,
                              const StreamHandler& on_event) override;
  absl::StatusOr<v1::GetLoadResponse> GetLoad(const v1::GetLoadRequest& request,
                                              const CallOptions& call) override;

 private:
  std::unique_ptr<v1::InferenceService::Stub> stub_;
};

// The channel the router uses for a backend or the classifier: insecure (the mesh runs on a
// private network or loopback), client-side round_robin over every address the name resolves
// to (`dns:///worker-headless:50052` spreads over the pods of a headless Service), and a short
// reconnect backoff (100 ms, at most 1 s instead of gRPC's 120 s), so that a backend that comes
// back (a restarted worker, one started after the router) is used again within seconds.
[[nodiscard]] std::shared_ptr<grpc::Channel> NewMeshChannel(const std::string& endpoint);

// One channel (NewMeshChannel) per endpoint, created on first use.
class GrpcBackendClientFactory final : public BackendClientFactory {
 public:
  std::shared_ptr<BackendClient> ForEndpoint(const std::string& endpoint) override;

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<BackendClient>> clients_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_BACKEND_CLIENT_H_
