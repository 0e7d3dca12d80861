#include "services/worker/model_manager.h"

#include <algorithm>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/common/crypto/sha256.h"

namespace tiermesh::worker {
namespace {

// Waiting loops wake at least this often to look at cancellation and the clock.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(20);
// A model that stayed up this long before crashing starts its backoff afresh.
constexpr absl::Duration kStableUptime = absl::Seconds(60);

void WaitUntil(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, absl::Time until) {
  const absl::Time slice_end = std::min(until, absl::Now() + kWaitSlice);
  cv.wait_until(lock, absl::ToChronoTime(slice_end));
}

}  // namespace

absl::Status VerifyModelFile(const std::string& path, const std::string& sha256) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat("model file ", path, " cannot be read (missing or no permission)"));
  }
  char magic[4] = {};
  in.read(magic, sizeof(magic));
  if (in.gcount() != 4 || absl::string_view(magic, 4) != "GGUF") {
    return absl::FailedPreconditionError(
        absl::StrCat("model file ", path, " is not a GGUF file (bad magic)"));
  }
  if (sha256.empty()) return absl::OkStatus();
  in.seekg(0);
  crypto::Sha256 hash;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.Update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  }
  const std::string actual = crypto::Sha256::Hex(hash.Finish());
  if (actual != sha256) {
    return absl::FailedPreconditionError(absl::StrCat("model file ", path,
                                                      ": sha256 mismatch (expected ", sha256,
                                                      ", file has ", actual, "); refusing to load"));
  }
  return absl::OkStatus();
}

struct ModelManager::Model {
  ModelConfig config;
  Residency residency = Residency::kUnloaded;
  absl::Status last_status;  // why failed / unavailable / restarting
  std::unique_ptr<LlamaProcess> process;
  std::shared_ptr<const LlamaClient> client;
  int running = 0;
  int queued = 0;
  int restarts = 0;
  int consecutive_failures = 0;
  absl::Time last_used = absl::InfinitePast();
  absl::Time ready_since = absl::InfinitePast();
  absl::Time retry_at = absl::InfinitePast();
  bool load_queued = false;
  LlamaLoad load;
  bool scraped = false;
  double prompt_tokens_total = 0;
  double generated_tokens_total = 0;

  int capacity() const {
    if (config.managed) return config.managed_config.parallel;
    return scraped ? load.slots_total : 0;
  }
};

ModelManager::ModelManager(WorkerConfig config, ModelManagerOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(const WorkerConfig& config,
                                                                   ModelManagerOptions options) {
  if (options.transport == nullptr) {
    return absl::InvalidArgumentError("ModelManager needs an HTTP transport");
  }
  std::unique_ptr<ModelManager> manager(new ModelManager(config, std::move(options)));
  for (const ModelConfig& c : manager->config_.models) {
    auto m = std::make_unique<Model>();
    m->config = c;
    if (c.managed) {
      m->residency = Residency::kUnloaded;
    } else {
      m->residency = Residency::kUnavailable;
      m->last_status = absl::UnavailableError(
          absl::StrCat("model ", c.name, ": ", c.external_config.url, " not checked yet"));
      m->client = std::make_shared<const LlamaClient>(manager->options_.transport,
                                                      c.external_config.url,
                                                      c.external_config.api_key);
    }
    manager->models_.emplace(c.name, std::move(m));
  }
  return manager;
}

ModelManager::~ModelManager() { Shutdown(); }

void ModelManager::Log(bool error, const std::string& message) const {
  if (!options_.logger.has_value()) return;
  if (error) {
    options_.logger->Error(message);
  } else {
    options_.logger->Info(message);
  }
}

ModelManager::Model* ModelManager::Find(const std::string& name) const {
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second.get();
}

void ModelManager::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || shutting_down_) return;
  started_ = true;
  loader_ = std::thread([this] { LoaderLoop(); });
  supervisor_ = std::thread([this] { SupervisorLoop(); });
}

void ModelManager::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  changed_.notify_all();
  if (loader_.joinable()) loader_.join();
  if (supervisor_.joinable()) supervisor_.join();
  std::vector<std::unique_ptr<LlamaProcess>> processes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, m] : models_) {
      if (m->process != nullptr) processes.push_back(std::move(m->process));
      if (m->config.managed) {
        m->client.reset();
        m->residency = Residency::kUnloaded;
      }
    }
  }
  for (auto& p : processes) p->Stop(absl::Seconds(5));
}

void ModelManager::StartLoadLocked(Model& m) {
  if (m.residency != Residency::kRestarting) {
    m.residency = Residency::kLoading;
    m.last_status = absl::OkStatus();
  }
  if (!m.load_queued) {
    m.load_queued = true;
    load_queue_.push_back(m.config.name);
  }
  changed_.notify_all();
}

absl::StatusOr<ModelManager::Lease> ModelManager::Acquire(
    const std::string& name, absl::Time deadline,
    const std::shared_ptr<http::CancellationToken>& cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  Model* m = Find(name);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not served by this worker"));
  }
  const absl::Time load_deadline = std::min(deadline, absl::Now() + config_.load_wait);
  bool in_queue = false;
  auto leave_queue = [&] {
    if (in_queue) {
      --m->queued;
      in_queue = false;
      changed_.notify_all();
    }
  };
  while (true) {
    if (shutting_down_ || !started_) {
      leave_queue();
      return absl::UnavailableError(shutting_down_ ? "worker is shutting down"
                                                   : "worker is starting (models not supervised yet)");
    }
    if (cancel != nullptr && cancel->IsCancelled()) {
      leave_queue();
      return absl::CancelledError("the caller went away while the request waited");
    }
    const absl::Time now = absl::Now();
    absl::Time wait_until = load_deadline;
    switch (m->residency) {
      case Residency::kReady: {
        const int capacity = m->capacity();
        if (in_queue) {
          if (capacity <= 0 || m->running < capacity) {
            --m->queued;
            ++m->running;
            return Lease(this, name, m->client);
          }
        } else {
          switch (Admit(m->running, capacity, m->queued, m->config.max_queue)) {
            case Admission::kRun:
              ++m->running;
              return Lease(this, name, m->client);
            case Admission::kQueue:
              ++m->queued;
              in_queue = true;
              break;
            case Admission::kReject:
              return absl::ResourceExhaustedError(absl::StrCat(
                  "model ", name, " is saturated: ", m->running, " of ", capacity,
                  " slots busy and ", m->queued, " requests queued (max_queue ",
                  m->config.max_queue, ")"));
          }
        }
        wait_until = deadline;  // a queued request waits as long as its caller lets it
        break;
      }
      case Residency::kRestarting:
      case Residency::kUnavailable:
        leave_queue();
        return absl::UnavailableError(absl::StrCat("model ", name, " is unavailable: ",
                                                   m->last_status.message()));
      case Residency::kFailed:
        leave_queue();
        if (now < m->retry_at) {
          return absl::UnavailableError(
              absl::StrCat("model ", name, " failed to load: ", m->last_status.message()));
        }
        StartLoadLocked(*m);
        continue;
      case Residency::kUnloaded:
        leave_queue();
        StartLoadLocked(*m);
        continue;
      case Residency::kLoading:
      case Residency::kUnloading:
        leave_queue();
        break;
    }
    if (now >= wait_until) {
      leave_queue();
      if (now >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "deadline passed while the request waited for model ", name, " (",
            ResidencyName(m->residency), "); nothing was sent to llama-server"));
      }
      return absl::UnavailableError(absl::StrCat("model ", name, " is still ",
                                                 ResidencyName(m->residency), " after ",
                                                 absl::FormatDuration(config_.load_wait)));
    }
    WaitUntil(changed_, lock, wait_until);
  }
}

ModelManager::Lease::Lease(Lease&& other) noexcept
    : manager_(std::exchange(other.manager_, nullptr)),
      model_(std::move(other.model_)),
      client_(std::move(other.client_)) {}

ModelManager::Lease::~Lease() {
  if (manager_ != nullptr) manager_->Release(model_);
}

void ModelManager::Release(const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    Model* m = Find(name);
    if (m == nullptr) return;
    --m->running;
    m->last_used = absl::Now();
  }
  changed_.notify_all();
}

absl::Status ModelManager::Load(const std::string& name, bool wait, absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  Model* m = Find(name);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not served by this worker"));
  }
  if (!started_ || shutting_down_) return absl::UnavailableError("worker is not running");
  bool requested = false;
  while (true) {
    if (shutting_down_) return absl::UnavailableError("worker is shutting down");
    switch (m->residency) {
      case Residency::kReady:
        return absl::OkStatus();
      case Residency::kUnavailable:
        // External: the supervisor's health checks make it ready; a sidecar may still be loading.
        if (!wait) return m->last_status;
        break;
      case Residency::kFailed:
        if (requested) return m->last_status;
        [[fallthrough]];
      case Residency::kUnloaded:
        StartLoadLocked(*m);
        requested = true;
        break;
      case Residency::kRestarting:
        if (!requested) {
          m->retry_at = absl::Now();  // an operator asked: do not wait out the backoff
          requested = true;
        }
        break;
      case Residency::kLoading:
      case Residency::kUnloading:
        requested = true;
        break;
    }
    if (!wait) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("model ", name, " is still ", ResidencyName(m->residency),
                       m->last_status.ok() ? "" : absl::StrCat(": ", m->last_status.message())));
    }
    WaitUntil(changed_, lock, deadline);
  }
}

absl::Status ModelManager::Unload(const std::string& name, absl::Duration drain_timeout) {
  return UnloadInternal(name, drain_timeout, /*for_eviction=*/false);
}

absl::Status ModelManager::UnloadInternal(const std::string& name, absl::Duration drain_timeout,
                                          bool for_eviction) {
  std::unique_lock<std::mutex> lock(mu_);
  Model* m = Find(name);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not served by this worker"));
  }
  if (!m->config.managed) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", name, " is external: the worker does not run it, so cannot unload it"));
  }
  const absl::Time deadline = absl::Now() + drain_timeout;
  while (m->residency == Residency::kUnloading) {
    if (shutting_down_) return absl::UnavailableError("worker is shutting down");
    WaitUntil(changed_, lock, absl::InfiniteFuture());
  }
  switch (m->residency) {
    case Residency::kUnloaded:
    case Residency::kFailed:
      return absl::OkStatus();
    case Residency::kRestarting:
      m->residency = Residency::kUnloaded;
      m->last_status = absl::OkStatus();
      lock.unlock();
      changed_.notify_all();
      NotifyDefaultReady();
      return absl::OkStatus();
    case Residency::kLoading:
      if (!for_eviction) {
        return absl::FailedPreconditionError(
            absl::StrCat("model ", name, " is loading; unload it once it is ready"));
      }
      return absl::InternalError("eviction chose a loading model");
    default:
      break;
  }
  m->residency = Residency::kUnloading;
  changed_.notify_all();
  Log(false, absl::StrCat("unloading model ", name, ": draining ", m->running, " request(s)"));
  while (m->running > 0 && absl::Now() < deadline && !shutting_down_) {
    WaitUntil(changed_, lock, deadline);
  }
  if (m->running > 0) {
    const int running = m->running;
    m->residency = Residency::kReady;
    changed_.notify_all();
    return absl::DeadlineExceededError(absl::StrCat("model ", name, " still serves ", running,
                                                    " request(s) after the drain timeout (",
                                                    absl::FormatDuration(drain_timeout),
                                                    "); it stays loaded"));
  }
  std::unique_ptr<LlamaProcess> process = std::move(m->process);
  m->client.reset();
  lock.unlock();
  if (process != nullptr) process->Stop(absl::Seconds(10));
  process.reset();
  lock.lock();
  m->residency = Residency::kUnloaded;
  m->scraped = false;
  m->load = LlamaLoad{};
  lock.unlock();
  changed_.notify_all();
  Log(false, absl::StrCat("model ", name, " unloaded"));
  NotifyDefaultReady();
  return absl::OkStatus();
}

absl::Status ModelManager::EvictFor(const std::string& incoming) {
  while (true) {
    std::string victim;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (shutting_down_) return absl::UnavailableError("worker is shutting down");
      std::vector<ResidentView> views;
      for (const auto& [name, m] : models_) {
        views.push_back({name, m->config.managed, m->residency, m->running, m->last_used});
      }
      std::optional<std::string> choice = ChooseEviction(views, incoming, config_.max_loaded);
      if (!choice.has_value()) return absl::OkStatus();
      if (choice->empty()) {
        WaitUntil(changed_, lock, absl::InfiniteFuture());
        continue;
      }
      victim = *choice;
    }
    Log(false, absl::StrCat("unloading model ", victim, " (least recently used) to load ",
                            incoming, " (max_loaded ", config_.max_loaded, ")"));
    absl::Status s = UnloadInternal(victim, config_.drain_timeout, /*for_eviction=*/true);
    if (!s.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot make room for model ", incoming,
                                                       ": ", s.message()));
    }
  }
}

void ModelManager::LoaderLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    while (!shutting_down_ && load_queue_.empty()) {
      changed_.wait(lock);
    }
    if (shutting_down_) return;
    const std::string name = load_queue_.front();
    load_queue_.pop_front();
    lock.unlock();
    LoadOne(name);
    lock.lock();
  }
}

void ModelManager::LoadOne(const std::string& name) {
  Model* m = Find(name);  // the map never changes after Create
  const ModelConfig config = m->config;
  absl::Status status = EvictFor(name);
  if (status.ok()) status = VerifyModelFile(config.managed_config.model_path,
                                            config.managed_config.sha256);
  std::unique_ptr<LlamaProcess> process;
  LlamaProcessOptions options;
  if (status.ok()) {
    options.binary = config.managed_config.binary;
    options.model_path = config.managed_config.model_path;
    options.ctx_size = config.managed_config.ctx_size;
    options.parallel = config.managed_config.parallel;
    options.n_gpu_layers = config.managed_config.n_gpu_layers;
    options.threads = config.managed_config.threads;
    options.extra_args = config.managed_config.extra_args;
    options.startup_timeout = config.managed_config.load_timeout;
    options.api_key = RandomApiKey();
    options.should_abort = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      return shutting_down_;
    };
    Log(false, absl::StrCat("loading model ", name, " from ", options.model_path));
    absl::StatusOr<std::unique_ptr<LlamaProcess>> started = LlamaProcess::Start(options);
    if (started.ok()) {
      process = *std::move(started);
    } else {
      status = started.status();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    m->load_queued = false;
    const absl::Time now = absl::Now();
    if (shutting_down_) {
      // Shutdown() stops what is in the map; this one never got there.
    } else if (status.ok()) {
      m->client = std::make_shared<const LlamaClient>(options_.transport, process->base_url(),
                                                      options.api_key);
      m->process = std::move(process);
      m->residency = Residency::kReady;
      m->last_status = absl::OkStatus();
      m->ready_since = now;
      m->last_used = now;
      m->scraped = false;
    } else {
      ++m->consecutive_failures;
      m->retry_at = now + RestartDelay(m->consecutive_failures, config_.restart_backoff_initial,
                                       config_.restart_backoff_max);
      m->last_status = status;
      // A restart that fails keeps restarting (with backoff); a load that fails is FAILED
      // until a request or LoadModel asks again after the backoff.
      if (m->residency != Residency::kRestarting) m->residency = Residency::kFailed;
    }
  }
  if (process != nullptr) process->Stop();
  changed_.notify_all();
  if (status.ok()) {
    Log(false, absl::StrCat("model ", name, " ready"));
  } else {
    Log(true, absl::StrCat("model ", name, " failed to load: ", status.message()));
  }
  NotifyDefaultReady();
}

void ModelManager::SupervisorLoop() {
  absl::Time next_scrape = absl::Now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutting_down_) {
    lock.unlock();
    SuperviseOnce();
    if (absl::Now() >= next_scrape) {
      ScrapeOnce();
      next_scrape = absl::Now() + config_.scrape_interval;
    }
    lock.lock();
    // Crash detection runs more often than scraping: requests must fail fast, not hang.
    const absl::Time until =
        std::min(next_scrape, absl::Now() + std::min(config_.scrape_interval, absl::Milliseconds(100)));
    if (!shutting_down_) changed_.wait_until(lock, absl::ToChronoTime(until));
  }
}

void ModelManager::SuperviseOnce() {
  std::vector<std::unique_ptr<LlamaProcess>> dead;
  std::vector<std::string> crashed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const absl::Time now = absl::Now();
    for (auto& [name, m] : models_) {
      if (!m->config.managed) continue;
      if (m->residency == Residency::kReady && m->process != nullptr && !m->process->Alive()) {
        const std::string how = m->process->ExitDescription();
        if (now - m->ready_since > kStableUptime) m->consecutive_failures = 0;
        ++m->consecutive_failures;
        ++m->restarts;
        m->retry_at = now + RestartDelay(m->consecutive_failures, config_.restart_backoff_initial,
                                         config_.restart_backoff_max);
        m->last_status = absl::UnavailableError(absl::StrCat(
            "llama-server ", how, "; restarting (attempt ", m->consecutive_failures, ")"));
        m->residency = Residency::kRestarting;
        m->scraped = false;
        m->client.reset();
        dead.push_back(std::move(m->process));
        crashed.push_back(name);
      }
      if (m->residency == Residency::kRestarting && !m->load_queued && now >= m->retry_at) {
        StartLoadLocked(*m);
      }
    }
  }
  for (const std::string& name : crashed) {
    Log(true, absl::StrCat("model ", name, ": llama-server crashed; restarting"));
    if (options_.on_restart) options_.on_restart(name);
  }
  dead.clear();  // reaps and joins the log readers, outside the lock
  if (!crashed.empty()) {
    changed_.notify_all();
    NotifyDefaultReady();
  }
}

void ModelManager::ScrapeOnce() {
  struct Target {
    std::string name;
    bool managed;
    std::shared_ptr<const LlamaClient> client;
  };
  std::vector<Target> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, m] : models_) {
      if (m->client == nullptr) continue;
      if (m->config.managed && m->residency != Residency::kReady) continue;
      targets.push_back({name, m->config.managed, m->client});
    }
  }
  bool readiness_changed = false;
  for (const Target& t : targets) {
    LlamaCallOptions call;
    call.deadline = absl::Now() + std::clamp(config_.scrape_interval, absl::Milliseconds(200),
                                             absl::Seconds(2));
    absl::Status health;
    if (!t.managed) {
      absl::StatusOr<int> code = t.client->Health(call);
      if (!code.ok()) {
        health = code.status();
      } else if (*code != 200) {
        health = absl::UnavailableError(absl::StrCat("/health answered ", *code,
                                                     *code == 503 ? " (loading)" : ""));
      }
    }
    absl::optional<SlotsSnapshot> slots;
    absl::optional<LlamaMetrics> metrics;
    if (health.ok()) {
      absl::StatusOr<SlotsSnapshot> s = t.client->Slots(call);
      if (s.ok()) slots = *s;
      absl::StatusOr<LlamaMetrics> mt = t.client->Metrics(call);
      if (mt.ok()) metrics = *mt;
    }
    std::lock_guard<std::mutex> lock(mu_);
    Model* m = Find(t.name);
    if (!t.managed) {
      const Residency before = m->residency;
      if (health.ok()) {
        m->residency = Residency::kReady;
        m->last_status = absl::OkStatus();
      } else {
        m->residency = Residency::kUnavailable;
        m->last_status = absl::UnavailableError(absl::StrCat(
            "external llama-server ", m->config.external_config.url, ": ", health.message()));
      }
      readiness_changed = readiness_changed || before != m->residency;
    }
    if (m->residency == Residency::kReady && (slots.has_value() || metrics.has_value())) {
      m->load = CombineLoad(slots, absl::nullopt, metrics);
      m->scraped = true;
      if (metrics.has_value()) {
        m->prompt_tokens_total = metrics->prompt_tokens_total;
        m->generated_tokens_total = metrics->tokens_predicted_total;
      }
    }
  }
  if (readiness_changed) {
    changed_.notify_all();
    NotifyDefaultReady();
  }
  if (options_.on_scrape) options_.on_scrape(Snapshots());
}

void ModelManager::NotifyDefaultReady() {
  bool ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready = !shutting_down_ && Find(config_.default_model)->residency == Residency::kReady;
    if (last_default_ready_.has_value() && *last_default_ready_ == ready) return;
    last_default_ready_ = ready;
  }
  if (options_.on_default_ready) options_.on_default_ready(ready);
}

bool ModelManager::DefaultReady() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Find(config_.default_model)->residency == Residency::kReady;
}

ModelSnapshot ModelManager::SnapshotLocked(const Model& m) const {
  ModelSnapshot s;
  s.name = m.config.name;
  s.managed = m.config.managed;
  s.residency = m.residency;
  s.error = std::string(m.last_status.message());
  s.context_window = m.config.context_window;
  s.supports_tools = m.config.supports_tools;
  s.running = m.running;
  s.queued = m.queued;
  s.capacity = m.capacity();
  s.max_queue = m.config.max_queue;
  s.restarts = m.restarts;
  s.last_used = m.last_used;
  s.load = m.load;
  s.scraped = m.scraped;
  s.prompt_tokens_total = m.prompt_tokens_total;
  s.generated_tokens_total = m.generated_tokens_total;
  return s;
}

std::vector<ModelSnapshot> ModelManager::Snapshots() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ModelSnapshot> out;
  for (const auto& [name, m] : models_) out.push_back(SnapshotLocked(*m));
  return out;
}

absl::StatusOr<ModelSnapshot> ModelManager::Snapshot(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  Model* m = Find(name);
  if (m == nullptr) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not served by this worker"));
  }
  return SnapshotLocked(*m);
}

pid_t ModelManager::ProcessId(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  Model* m = Find(name);
  return (m == nullptr || m->process == nullptr) ? -1 : m->process->pid();
}

std::shared_ptr<const LlamaClient> ModelManager::ClientOf(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  Model* m = Find(name);
  return (m == nullptr || m->residency != Residency::kReady) ? nullptr : m->client;
}

}  // namespace tiermesh::worker
