// The worker's Prometheus metrics (DESIGN.md's contract), fed by the service (per request) and
// by the model manager's scrape rounds and the GPU probe (per interval):
//   tiermesh_worker_requests_total{model,code}          requests answered, by gRPC code
//   tiermesh_worker_tokens_total{model,kind}            prompt|completion tokens served
//   tiermesh_worker_time_to_first_token_seconds{model}  streams (histogram)
//   tiermesh_worker_admission_rejected_total{model}     RESOURCE_EXHAUSTED at once (saturated)
//   tiermesh_worker_llama_restarts_total{model}         llama-server crashes restarted
//   tiermesh_worker_model_loaded{model}                 1 when ready
//   tiermesh_worker_slots_busy{model}, tiermesh_worker_slots_total{model},
//   tiermesh_worker_deferred_requests{model}, tiermesh_worker_queue_depth{model},
//   tiermesh_worker_kv_cache_usage_ratio{model}         from llama-server's /slots and /metrics
//   tiermesh_worker_ready                               1 when the default model is ready
//   tiermesh_worker_gpu_utilization_ratio{gpu}, tiermesh_worker_gpu_memory_used_bytes{gpu},
//   tiermesh_worker_gpu_memory_total_bytes{gpu}         NVML; absent without a GPU
// Model names come from the config (bounded); GPU labels are indices.
#ifndef TIERMESH_SERVICES_WORKER_WORKER_METRICS_H_
#define TIERMESH_SERVICES_WORKER_WORKER_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

#include "services/common/metrics/families.h"
#include "services/worker/gpu.h"
#include "services/worker/model_manager.h"

namespace tiermesh::worker {

class WorkerMetrics {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WorkerMetrics>> Create(
      prometheus::Registry& registry);

  void RecordRequest(const std::string& model, absl::StatusCode code, int64_t prompt_tokens,
                     int64_t completion_tokens);
  void RecordTimeToFirstToken(const std::string& model, absl::Duration ttft);
  void RecordRejected(const std::string& model);
  void RecordRestart(const std::string& model);
  void SetReady(bool ready);
  void UpdateModels(const std::vector<ModelSnapshot>& models);
  void UpdateGpus(const std::vector<GpuSample>& gpus);

 private:
  WorkerMetrics() = default;
  std::unique_ptr<metrics::CounterVec<2>> requests_;
  std::unique_ptr<metrics::CounterVec<2>> tokens_;
  std::unique_ptr<metrics::HistogramVec<1>> ttft_;
  std::unique_ptr<metrics::CounterVec<1>> rejected_;
  std::unique_ptr<metrics::CounterVec<1>> restarts_;
  std::unique_ptr<metrics::GaugeVec<1>> loaded_;
  std::unique_ptr<metrics::GaugeVec<1>> slots_busy_;
  std::unique_ptr<metrics::GaugeVec<1>> slots_total_;
  std::unique_ptr<metrics::GaugeVec<1>> deferred_;
  std::unique_ptr<metrics::GaugeVec<1>> queue_depth_;
  std::unique_ptr<metrics::GaugeVec<1>> kv_cache_;
  std::unique_ptr<metrics::GaugeVec<1>> gpu_utilization_;
  std::unique_ptr<metrics::GaugeVec<1>> gpu_memory_used_;
  std::unique_ptr<metrics::GaugeVec<1>> gpu_memory_total_;
  prometheus::Gauge* ready_ = nullptr;
};

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_WORKER_METRICS_H_
