// The worker's gRPC services: InferenceService (the same API as the cloud-proxy, served by
// local llama-server models) and ModelService (residency of local models). Adapters only: they
// validate, take a slot from the ModelManager, call llama-server through LlamaClient, and
// encode the answer; the decisions live in residency.h, llama_api.h and model_manager.h.
//
//   WorkerInferenceService inference(manager.get(), metrics.get(), {});
//   WorkerModelService models(manager.get());
//   parts.services = {&inference, &models};
//
// Behaviour:
// - An empty `model` means the default model. Bad parameters: INVALID_ARGUMENT before any slot
//   is taken. Saturated: RESOURCE_EXHAUSTED at once. Crashed/restarting: UNAVAILABLE at once.
// - The caller's deadline and cancellation go to llama-server: a cancelled call aborts the HTTP
//   request at once (polled every cancel_poll_interval), which frees the slot.
// - Streams: deltas as they come, then a StreamSummary; OK only for a complete answer. A cut
//   or error after deltas were sent ends with a summary (complete=false, usage so far) and a
//   non-OK status; an error before any delta ends with no summary.
#ifndef TIERMESH_SERVICES_WORKER_INFERENCE_SERVICE_H_
#define TIERMESH_SERVICES_WORKER_INFERENCE_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"

#include "services/common/server/cancel_watcher.h"
#include "services/common/server/tracing_interceptor.h"
#include "services/common/tracing/tracer.h"
#include "services/worker/model_manager.h"
#include "services/worker/worker_metrics.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tiermesh/v1/model.grpc.pb.h"

namespace tiermesh::worker {

struct WorkerServiceOptions {
  absl::Duration cancel_poll_interval = absl::Milliseconds(10);
  // No byte from llama-server for this long fails a stream ("stalled").
  absl::Duration stream_idle_timeout = absl::Seconds(60);
  // Client spans for llama-server calls; their context goes out as `traceparent`.
  tracing::Tracer tracer = tracing::Tracer::Noop();
  std::shared_ptr<server::ServerSpans> server_spans;
};

class WorkerInferenceService final : public tiermesh::v1::InferenceService::Service {
 public:
  // `manager` must outlive the service; `metrics` may be null.
  WorkerInferenceService(ModelManager* manager, WorkerMetrics* metrics,
                         WorkerServiceOptions options);

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

 private:
  // What one inference call holds once admitted: its slot, its client span, the options of the
  // llama-server call and the request as forwarded (model name filled in).
  struct Call {
    ModelManager::Lease lease;
    tracing::Span span;
    LlamaCallOptions options;
    tiermesh::v1::GenerateRequest request;
  };
  // Validates, applies fault injection and takes a slot (waiting as the manager says).
  absl::StatusOr<Call> Begin(grpc::ServerContext* context,
                             const tiermesh::v1::GenerateRequest& request,
                             const server::CancelWatcher& watcher, bool stream);
  std::string ModelName(const tiermesh::v1::GenerateRequest& request) const;
  void Record(const std::string& model, const absl::Status& status,
              const tiermesh::v1::Usage* usage);
  // The configured fault injection's verdict for the next request (OK: serve it).
  absl::Status InjectedFault();

  ModelManager* manager_;
  WorkerMetrics* metrics_;
  WorkerServiceOptions options_;
  server::CancelPoller cancel_poller_;  // one thread watches every call for cancellation
  std::atomic<uint64_t> requests_{0};
};

class WorkerModelService final : public tiermesh::v1::ModelService::Service {
 public:
  explicit WorkerModelService(ModelManager* manager);

  grpc::Status ListModels(grpc::ServerContext* context,
                          const tiermesh::v1::ModelServiceListModelsRequest* request,
                          tiermesh::v1::ModelServiceListModelsResponse* response) override;
  grpc::Status LoadModel(grpc::ServerContext* context,
                         const tiermesh::v1::LoadModelRequest* request,
                         tiermesh::v1::LoadModelResponse* response) override;
  grpc::Status UnloadModel(grpc::ServerContext* context,
                           const tiermesh::v1::UnloadModelRequest* request,
                           tiermesh::v1::UnloadModelResponse* response) override;

 private:
  ModelManager* manager_;
};

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_INFERENCE_SERVICE_H_
