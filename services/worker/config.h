// The worker's configuration (YAML): which local models it serves and how. Each model is either
// `managed` (the worker runs llama-server itself, loads it on demand and keeps at most
// `max_loaded` resident, least recently used out first) or `external` (a llama-server someone
// else runs, e.g. a sidecar in the same pod: only its URL).
//
//   default_model: tiny                  # readiness follows this model
//   max_loaded: 1                        # managed models resident at once
//   llama_server: {binary: "${TIERMESH_LLAMA_SERVER:-llama-server}", threads: 2}
//   models:
//     - name: tiny
//       managed: {model_path: models/tiny.gguf, sha256: "<hex>", ctx_size: 4096, parallel: 2}
//     - name: sidecar
//       external: {url: "http://127.0.0.1:8080", api_key: "${LLAMA_API_KEY:-}"}
//
//   TIERMESH_ASSIGN_OR_RETURN(WorkerConfig config,
//       config::LoadConfigFile(path, config::ProcessEnv(), ParseWorkerConfig));
//
// Parsing is strict (unknown keys rejected with their path) and pure: files are checked when a
// model is loaded, not here.
#ifndef TIERMESH_SERVICES_WORKER_CONFIG_H_
#define TIERMESH_SERVICES_WORKER_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

namespace tiermesh::worker {

struct ManagedModelConfig {
  std::string binary;      // default: llama_server.binary
  std::string model_path;  // a GGUF file
  std::string sha256;      // lower-case hex; empty: not checked
  int ctx_size = 4096;     // total, shared by the slots
  int parallel = 2;        // slots
  int n_gpu_layers = 0;
  int threads = 0;  // 0: llama_server.threads
  std::vector<std::string> extra_args;
  absl::Duration load_timeout = absl::Minutes(2);
};

struct ExternalModelConfig {
  std::string url;  // http://host:port, no trailing slash
  std::string api_key;
};

struct ModelConfig {
  std::string name;
  bool managed = true;
  ManagedModelConfig managed_config;
  ExternalModelConfig external_config;
  bool supports_tools = true;
  // Requests that may wait for a slot beyond the busy ones; more are refused at once with
  // RESOURCE_EXHAUSTED (the router then spills over to the cloud).
  int max_queue = 8;
  // Context window per request, reported to the router; 0: ctx_size / parallel (managed).
  int context_window = 0;
};

struct WorkerConfig {
  std::string default_model;
  int max_loaded = 1;
  std::string llama_server_binary = "llama-server";
  int llama_server_threads = 2;
  // How often llama-server's /health, /slots and /metrics are read (never on the request path).
  absl::Duration scrape_interval = absl::Seconds(1);
  // How long a request waits for its model to load (on demand) before UNAVAILABLE.
  absl::Duration load_wait = absl::Minutes(2);
  absl::Duration restart_backoff_initial = absl::Milliseconds(500);
  absl::Duration restart_backoff_max = absl::Seconds(30);
  // A stream with no byte from llama-server for this long fails (UNAVAILABLE, "stalled").
  absl::Duration stream_idle_timeout = absl::Seconds(60);
  // How long an unload waits for in-flight requests by default.
  absl::Duration drain_timeout = absl::Seconds(60);
  // Chaos testing (Envoy-style fault injection): this share of inference requests is answered
  // UNAVAILABLE without touching a model, spread evenly (exactly every 1/ratio-th request), so
  // that fallbacks can be exercised and measured. 0 (the default) in production.
  double fault_unavailable_ratio = 0;
  std::vector<ModelConfig> models;

  const ModelConfig* Find(const std::string& name) const;
};

// Validates names (unique, [A-Za-z0-9_.:-]), exactly one of managed/external per model,
// the default model exists, ranges. INVALID_ARGUMENT naming the key.
[[nodiscard]] absl::StatusOr<WorkerConfig> ParseWorkerConfig(const YAML::Node& root);

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_CONFIG_H_
