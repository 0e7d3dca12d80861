// The worker's local models: residency (load on demand, least-recently-used unload beyond
// max_loaded, drain before unload), supervision (a crashed llama-server is restarted with
// exponential backoff), admission (a request runs on a free slot, waits in a bounded queue, or
// is refused at once) and the load figures scraped from llama-server on an interval.
//
//   TIERMESH_ASSIGN_OR_RETURN(auto manager, ModelManager::Create(config, {.transport = curl}));
//   manager->Start();                                   // supervisor thread
//   TIERMESH_RETURN_IF_ERROR(manager->Load(config.default_model, deadline));
//   ...
//   TIERMESH_ASSIGN_OR_RETURN(ModelManager::Lease lease,
//                             manager->Acquire("tiny", call_deadline, cancel_token));
//   lease.client().Stream(request, options, on_delta, &outcome);   // the slot is ours
//   // ~Lease frees the slot and marks the model used.
//
// Errors a request can get from Acquire: NOT_FOUND (unknown model), UNAVAILABLE (crashed and
// restarting, external server down, load failed, shutting down, still loading after
// load_wait), RESOURCE_EXHAUSTED (every slot busy and the queue full), DEADLINE_EXCEEDED or
// CANCELLED while waiting (nothing was sent to llama-server).
#ifndef TIERMESH_SERVICES_WORKER_MODEL_MANAGER_H_
#define TIERMESH_SERVICES_WORKER_MODEL_MANAGER_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "services/common/http/cancellation.h"
#include "services/common/http/http_client.h"
#include "services/common/logging/logger.h"
#include "services/worker/config.h"
#include "services/worker/llama_client.h"
#include "services/worker/llama_load.h"
#include "services/worker/llama_process.h"
#include "services/worker/residency.h"

namespace tiermesh::worker {

// What the outside sees of one model (ListModels, GetLoad, metrics).
struct ModelSnapshot {
  std::string name;
  bool managed = true;
  Residency residency = Residency::kUnloaded;
  std::string error;  // why it is failed/unavailable/restarting
  int context_window = 0;
  bool supports_tools = true;
  int running = 0;   // requests on a slot
  int queued = 0;    // requests waiting for a slot
  int capacity = 0;  // slots (0: unknown)
  int max_queue = 0;
  int restarts = 0;
  absl::Time last_used = absl::InfinitePast();
  LlamaLoad load;  // last scrape
  bool scraped = false;
  // llama-server's own token counters (from /metrics), for tokens/s.
  double prompt_tokens_total = 0;
  double generated_tokens_total = 0;
};

struct ModelManagerOptions {
  http::HttpTransport* transport = nullptr;  // required; not owned
  std::optional<logging::Logger> logger;
  // Called (from the supervisor thread or a loader) whenever the default model's readiness
  // changes: the server flips its health with it.
  std::function<void(bool ready)> on_default_ready;
  // Called after every scrape round with the current snapshots (metrics export).
  std::function<void(const std::vector<ModelSnapshot>&)> on_scrape;
  // Called once per detected llama-server crash.
  std::function<void(const std::string& model)> on_restart;
};

class ModelManager {
 public:
  // A slot on a ready model, held for one request.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    const LlamaClient& client() const { return *client_; }
    const std::string& model() const { return model_; }

   private:
    friend class ModelManager;
    Lease(ModelManager* manager, std::string model, std::shared_ptr<const LlamaClient> client)
        : manager_(manager), model_(std::move(model)), client_(std::move(client)) {}
    ModelManager* manager_;
    std::string model_;
    std::shared_ptr<const LlamaClient> client_;
  };

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelManager>> Create(
      const WorkerConfig& config, ModelManagerOptions options);
  // Stops the supervisor and every llama-server this manager started.
  ~ModelManager();
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Starts the supervisor thread (crash detection, restarts, scraping, external health).
  void Start();
  // Refuses new requests (UNAVAILABLE), stops the supervisor and loaders, stops every process.
  void Shutdown();

  [[nodiscard]] absl::StatusOr<Lease> Acquire(const std::string& model, absl::Time deadline,
                                              const std::shared_ptr<http::CancellationToken>& cancel);

  // Loads a managed model (evicting as needed) and, when `wait`, waits until it is ready,
  // failed or `deadline`. External models: OK when ready, else their error.
  [[nodiscard]] absl::Status Load(const std::string& model, bool wait, absl::Time deadline);
  // Drains (waits for in-flight requests up to `drain_timeout`) and stops a managed model.
  // DEADLINE_EXCEEDED (and the model stays loaded) when requests are still running then.
  [[nodiscard]] absl::Status Unload(const std::string& model, absl::Duration drain_timeout);

  [[nodiscard]] std::vector<ModelSnapshot> Snapshots() const;
  [[nodiscard]] absl::StatusOr<ModelSnapshot> Snapshot(const std::string& model) const;
  bool DefaultReady() const;
  const WorkerConfig& config() const { return config_; }
  // The llama-server process of a managed model, for tests (kill -9) and logs; -1 when none.
  pid_t ProcessId(const std::string& model) const;
  // The client of a ready model (tests read llama-server's /slots and /metrics through it);
  // null when the model is not ready.
  std::shared_ptr<const LlamaClient> ClientOf(const std::string& model) const;

 private:
  struct Model;

  ModelManager(WorkerConfig config, ModelManagerOptions options);
  Model* Find(const std::string& name) const;
  void Release(const std::string& model);
  // Queues a load of `m` for the loader thread (LOADING, or still RESTARTING for a restart, so
  // that requests keep failing fast). Caller holds mu_.
  void StartLoadLocked(Model& m);
  void LoaderLoop();
  void LoadOne(const std::string& name);
  [[nodiscard]] absl::Status EvictFor(const std::string& incoming);
  [[nodiscard]] absl::Status UnloadInternal(const std::string& model, absl::Duration drain_timeout,
                                            bool for_eviction);
  void SupervisorLoop();
  void SuperviseOnce();
  void ScrapeOnce();
  void NotifyDefaultReady();
  ModelSnapshot SnapshotLocked(const Model& m) const;
  void Log(bool error, const std::string& message) const;

  const WorkerConfig config_;
  const ModelManagerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::unique_ptr<Model>> models_;  // guarded by mu_ (the map is fixed)
  bool shutting_down_ = false;                            // guarded by mu_
  std::optional<bool> last_default_ready_;                // guarded by mu_
  std::deque<std::string> load_queue_;                    // guarded by mu_
  bool started_ = false;                                  // guarded by mu_

  std::thread loader_;  // one load (evict + start) at a time
  std::thread supervisor_;
};

// Checks a model file before it is handed to llama-server: it exists, is a GGUF file (magic
// "GGUF") and, when `sha256` is set, has that digest. FAILED_PRECONDITION with a clear message.
[[nodiscard]] absl::Status VerifyModelFile(const std::string& path, const std::string& sha256);

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_MODEL_MANAGER_H_
