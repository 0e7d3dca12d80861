// The cloud-proxy's InferenceService: the same API as the worker, served by
// cloud providers. A thin gRPC adapter over the pure pieces: it looks the
// model up, picks the key (the operator's, or the caller's own from
// "x-tiermesh-provider-key" metadata: BYOK), applies the provider's
// client-side limits, calls UpstreamClient once (no retries: the router owns
// them), prices the answer and records metrics.
//
//   ASSIGN_OR_RETURN(auto service, CloudInferenceService::Create(
//       config, config::ProcessEnv(), ReadFileToString, {.transport = curl.get(), ...}));
//   server::ServerComponents parts;
//   parts.services = {service.get()};
//
// Behaviour:
// - Unknown model: NOT_FOUND; no provider configured at all: UNAVAILABLE
//   ("offline"). A provider without a key (and no BYOK key in the call):
//   UNAVAILABLE naming the missing variable/file; ListModels/GetLoad report
//   it MODEL_STATE_UNAVAILABLE with that reason.
// - Client-side limits (requests/min, tokens/min, max_concurrency) reject
//   with RESOURCE_EXHAUSTED before any upstream call; the tokens/min
//   reservation is the estimated prompt + max output tokens (request, else
//   model config, else default_reserve_output_tokens), corrected to the real
//   usage afterwards. BYOK calls spend the caller's quota, not the
//   operator's, and skip these limits.
// - Errors carry the reason in trailing metadata "x-tiermesh-error-reason"
//   and the wait in "retry-after-ms" when known.
// - Streams: deltas as they come; then a summary (complete, finish reason,
//   usage, cost, timings) and OK only when the provider's stream was
//   complete. After a cut/stall/error with deltas sent, the summary has
//   complete=false and the usage so far, and the call ends non-OK. An error
//   before any delta ends the call with no summary (the router may fall back
//   invisibly).
// - Cancellation (client gone or deadline) cancels the upstream request at
//   once (polled every cancel_poll_interval).
// - The BYOK key is used for that call only: never stored, logged, traced or
//   put in a metric; every status is redacted with it.
// Metrics: tiermesh_cloud_requests_total{provider,model,code},
// tiermesh_cloud_cost_usd_total{provider,model} (operator spend),
// tiermesh_cloud_byok_cost_usd_total{provider,model} (BYOK, informational),
// tiermesh_cloud_rate_limited_total{provider} (client-side rejections and
// upstream RESOURCE_EXHAUSTED), tiermesh_cloud_upstream_duration_seconds{provider},
// tiermesh_cloud_tokens_total{provider,model,kind} (prompt|completion).
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_INFERENCE_SERVICE_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_INFERENCE_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

#include "services/cloud_proxy/config.h"
#include "services/cloud_proxy/provider.h"
#include "services/cloud_proxy/rate_limiter.h"
#include "services/cloud_proxy/upstream_client.h"
#include "services/common/http/http_client.h"
#include "services/common/server/cancel_watcher.h"
#include "services/common/logging/logger.h"
#include "services/common/metrics/families.h"
#include "services/common/tracing/tracer.h"
#include "tiermesh/v1/inference.grpc.pb.h"

namespace tiermesh::cloud {

// Call metadata carrying the caller's own provider key (BYOK).
inline constexpr char kProviderKeyMetadata[] = "x-tiermesh-provider-key";

struct CloudServiceOptions {
  // Required; not owned.
  tiermesh::http::HttpTransport* transport = nullptr;
  // Default: absl::Now.
  std::function<absl::Time()> clock;
  // Where the cloud metrics go; null: none.
  prometheus::Registry* metrics_registry = nullptr;
  // One line per call (no prompt text, never a key); unset: no request logs.
  std::optional<tiermesh::logging::Logger> logger;
  // Output tokens reserved against tokens/min when neither the request nor
  // the model config bounds them.
  int64_t default_reserve_output_tokens = 1024;
  // A span per upstream call, child of the call's server span (install the
  // tracing interceptor, server.h) or of the caller's traceparent; Noop:
  // none, and the caller's traceparent still goes on to the provider.
  tiermesh::tracing::Tracer tracer = tiermesh::tracing::Tracer::Noop();
  // How often a running call checks whether its client went away.
  absl::Duration cancel_poll_interval = absl::Milliseconds(10);
};

class CloudInferenceService final : public tiermesh::v1::InferenceService::Service {
 public:
  // Resolves keys and headers (a provider whose key is missing stays
  // listed, unavailable). INVALID_ARGUMENT without a transport; metric
  // registration errors pass through.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CloudInferenceService>> Create(
      const CloudConfig& config, const EnvLookup& env, const FileReader& read_file,
      CloudServiceOptions options);
  ~CloudInferenceService() override;

  grpc::Status Generate(grpc::ServerContext* context, const tiermesh::v1::GenerateRequest* request,
                        tiermesh::v1::GenerateResponse* response) override;
  grpc::Status GenerateStream(
      grpc::ServerContext* context, const tiermesh::v1::GenerateStreamRequest* request,
      grpc::ServerWriter<tiermesh::v1::GenerateStreamResponse>* writer) override;
  grpc::Status ListModels(grpc::ServerContext* context,
                          const tiermesh::v1::ListModelsRequest* request,
                          tiermesh::v1::ListModelsResponse* response) override;
  grpc::Status GetLoad(grpc::ServerContext* context, const tiermesh::v1::GetLoadRequest* request,
                       tiermesh::v1::GetLoadResponse* response) override;

  // Some provider can serve with the operator's key.
  bool ready() const;

 private:
  struct Provider;
  struct Model;
  struct Metrics;
  struct Prepared;

  explicit CloudInferenceService(CloudServiceOptions options);
  [[nodiscard]] absl::StatusOr<Prepared> Prepare(grpc::ServerContext* context,
                                                 const tiermesh::v1::GenerateRequest& request,
                                                 bool stream);
  // The upstream call of a prepared request: its key, the caller's deadline,
  // cancellation and the span it belongs to.
  UpstreamCall CallFor(const Prepared& prepared, const grpc::ServerContext& context,
                       const std::shared_ptr<tiermesh::http::CancellationToken>& cancel) const;
  void Release(const Prepared& prepared, const tiermesh::v1::Usage* usage);
  void Record(const Prepared* prepared, absl::StatusCode code, const tiermesh::v1::Usage* usage,
              const tiermesh::v1::Cost* cost, absl::Duration upstream,
              const tiermesh::v1::GenerateRequest& request, const absl::Status& status);
  tiermesh::v1::ModelState StateOf(const Model& model) const;

  CloudServiceOptions options_;
  std::unique_ptr<UpstreamClient> upstream_;
  std::vector<std::unique_ptr<Provider>> providers_;
  std::map<std::string, std::unique_ptr<Model>> models_;
  std::unique_ptr<Metrics> metrics_;
  // One thread watches every call for its client going away.
  std::unique_ptr<tiermesh::server::CancelPoller> cancel_poller_;
};

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_INFERENCE_SERVICE_H_
