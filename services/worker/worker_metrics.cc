#include "services/worker/worker_metrics.h"

#include "absl/strings/str_cat.h"

#include "services/common/status/status.h"

namespace tiermesh::worker {

absl::StatusOr<std::unique_ptr<WorkerMetrics>> WorkerMetrics::Create(
    prometheus::Registry& registry) {
  std::unique_ptr<WorkerMetrics> m(new WorkerMetrics());
  auto name = [](const char* n) { return metrics::MetricName("worker", n); };
  TIERMESH_ASSIGN_OR_RETURN(m->requests_,
                            metrics::NewCounterVec(registry, name("requests_total"),
                                                   "Inference requests answered, by gRPC code.",
                                                   {"model", "code"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->tokens_, metrics::NewCounterVec(registry, name("tokens_total"),
                                         "Tokens served (kind: prompt|completion).",
                                         {"model", "kind"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->ttft_, metrics::NewHistogramVec(registry, name("time_to_first_token_seconds"),
                                         "Time from request to first streamed token.", {"model"},
                                         metrics::LatencyBucketsSeconds()));
  TIERMESH_ASSIGN_OR_RETURN(
      m->rejected_,
      metrics::NewCounterVec(registry, name("admission_rejected_total"),
                             "Requests refused at once because every slot and the queue were full.",
                             {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->restarts_, metrics::NewCounterVec(registry, name("llama_restarts_total"),
                                           "llama-server crashes detected and restarted.",
                                           {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(m->loaded_,
                            metrics::NewGaugeVec(registry, name("model_loaded"),
                                                 "1 when the model is loaded and ready.", {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(m->slots_busy_,
                            metrics::NewGaugeVec(registry, name("slots_busy"),
                                                 "llama-server slots processing a request.",
                                                 {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(m->slots_total_,
                            metrics::NewGaugeVec(registry, name("slots_total"),
                                                 "llama-server slots.", {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->deferred_, metrics::NewGaugeVec(registry, name("deferred_requests"),
                                         "Requests llama-server deferred (no free slot).",
                                         {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->queue_depth_, metrics::NewGaugeVec(registry, name("queue_depth"),
                                            "Requests waiting in the worker for a slot.",
                                            {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->kv_cache_, metrics::NewGaugeVec(registry, name("kv_cache_usage_ratio"),
                                         "Share of the KV cache (context) in use, 0..1.",
                                         {"model"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->gpu_utilization_, metrics::NewGaugeVec(registry, name("gpu_utilization_ratio"),
                                                "GPU busy share (NVML), 0..1.", {"gpu"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->gpu_memory_used_, metrics::NewGaugeVec(registry, name("gpu_memory_used_bytes"),
                                                "GPU memory in use (NVML).", {"gpu"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->gpu_memory_total_, metrics::NewGaugeVec(registry, name("gpu_memory_total_bytes"),
                                                 "GPU memory in all (NVML).", {"gpu"}));
  TIERMESH_ASSIGN_OR_RETURN(
      m->ready_, metrics::NewGauge(registry, name("ready"),
                                   "1 when the default model is ready (the worker is SERVING)."));
  return m;
}

void WorkerMetrics::RecordRequest(const std::string& model, absl::StatusCode code,
                                  int64_t prompt_tokens, int64_t completion_tokens) {
  requests_->Get({model, CodeName(code)}).Increment();
  if (prompt_tokens > 0) {
    tokens_->Get({model, "prompt"}).Increment(static_cast<double>(prompt_tokens));
  }
  if (completion_tokens > 0) {
    tokens_->Get({model, "completion"}).Increment(static_cast<double>(completion_tokens));
  }
}

void WorkerMetrics::RecordTimeToFirstToken(const std::string& model, absl::Duration ttft) {
  ttft_->Get({model}).Observe(absl::ToDoubleSeconds(ttft));
}

void WorkerMetrics::RecordRejected(const std::string& model) { rejected_->Get({model}).Increment(); }

void WorkerMetrics::RecordRestart(const std::string& model) { restarts_->Get({model}).Increment(); }

void WorkerMetrics::SetReady(bool ready) { ready_->Set(ready ? 1 : 0); }

void WorkerMetrics::UpdateModels(const std::vector<ModelSnapshot>& models) {
  for (const ModelSnapshot& m : models) {
    const bool ready = m.residency == Residency::kReady;
    loaded_->Get({m.name}).Set(ready ? 1 : 0);
    // Create the counters so that dashboards see zeros rather than nothing.
    restarts_->Get({m.name});
    rejected_->Get({m.name});
    slots_busy_->Get({m.name}).Set(ready && m.scraped ? m.load.slots_busy : 0);
    slots_total_->Get({m.name}).Set(ready ? m.capacity : 0);
    deferred_->Get({m.name}).Set(ready && m.scraped ? m.load.deferred_requests : 0);
    queue_depth_->Get({m.name}).Set(m.queued);
    kv_cache_->Get({m.name}).Set(ready && m.scraped ? m.load.kv_cache_usage_ratio : 0);
  }
}

void WorkerMetrics::UpdateGpus(const std::vector<GpuSample>& gpus) {
  for (const GpuSample& g : gpus) {
    const std::string gpu = absl::StrCat(g.index);
    gpu_utilization_->Get({gpu}).Set(g.utilization_ratio);
    gpu_memory_used_->Get({gpu}).Set(static_cast<double>(g.memory_used_bytes));
    gpu_memory_total_->Get({gpu}).Set(static_cast<double>(g.memory_total_bytes));
  }
}

}  // namespace tiermesh::worker
