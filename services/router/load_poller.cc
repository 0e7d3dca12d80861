#include "services/router/load_poller.h"

#include <algorithm>
#include <set>
#include <utility>

namespace tiermesh::router {

EndpointLoad EndpointLoadFromReport(const std::string& endpoint, const std::string& model,
                                    const absl::optional<LoadReport>& report,
                                    int32_t router_in_flight, bool caller_key) {
  EndpointLoad load;
  load.endpoint = endpoint;
  load.router_in_flight = router_in_flight;
  if (!report) return load;
  const v1::GetLoadResponse& r = report->response;
  if (caller_key) {
    if (!r.ready()) return load;  // about the operator's keys: unknown for this call
    for (const v1::ModelLoad& m : r.models()) {
      if (m.model() == model && m.state() == v1::MODEL_STATE_UNAVAILABLE) return load;
    }
  }
  if (!r.ready()) {
    load.reported = true;
    load.ready = false;
    return load;
  }
  for (const v1::ModelLoad& m : r.models()) {
    if (m.model() != model) continue;
    switch (m.state()) {
      case v1::MODEL_STATE_FAILED:
      case v1::MODEL_STATE_UNLOADING:
      case v1::MODEL_STATE_UNAVAILABLE:
        load.reported = true;
        load.model_ready = false;
        return load;
      case v1::MODEL_STATE_UNLOADED:
      case v1::MODEL_STATE_LOADING:
        // Loaded on demand: its slots are not known yet. Accepting: unknown
        // load (neither preferred nor avoided); refusing: not usable.
        if (m.accepting()) return load;
        load.reported = true;
        load.accepting = false;
        return load;
      default:
        break;
    }
    load.reported = true;
    load.accepting = m.accepting();
    load.slots_busy = m.slots_busy();
    load.slots_total = m.slots_total();
    load.deferred_requests = m.deferred_requests();
    load.queue_depth = m.queue_depth();
    load.kv_cache_usage_ratio = m.kv_cache_usage_ratio();
    return load;
  }
  return load;  // the model is not in the report: unknown
}

std::vector<std::string> PolledEndpoints(const Policy& policy) {
  std::set<std::string> unique;
  for (const BackendConfig& backend : policy.backends) {
    unique.insert(backend.endpoints.begin(), backend.endpoints.end());
  }
  return std::vector<std::string>(unique.begin(), unique.end());
}

LoadPoller::LoadPoller(BackendClientFactory* backends, const Clock* clock,
                       const LoadPollerOptions& options)
    : backends_(backends), clock_(clock), options_(options) {}

LoadPoller::~LoadPoller() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LoadPoller::SetEndpoints(std::vector<std::string> endpoints) {
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_ = std::move(endpoints);
  for (auto it = reports_.begin(); it != reports_.end();) {
    if (std::find(endpoints_.begin(), endpoints_.end(), it->first) == endpoints_.end()) {
      it = reports_.erase(it);
    } else {
      ++it;
    }
  }
}

void LoadPoller::PollOnce() {
  std::vector<std::string> endpoints;
  {
    std::lock_guard<std::mutex> lock(mu_);
    endpoints = endpoints_;
  }
  for (const std::string& endpoint : endpoints) {
    CallOptions call;
    call.deadline = clock_->Now() + options_.timeout;
    call.request_id = "load-poll";
    absl::StatusOr<v1::GetLoadResponse> response =
        backends_->ForEndpoint(endpoint)->GetLoad(v1::GetLoadRequest(), call);
    if (!response.ok()) continue;  // the last report ages out on its own
    std::lock_guard<std::mutex> lock(mu_);
    if (std::find(endpoints_.begin(), endpoints_.end(), endpoint) == endpoints_.end()) continue;
    reports_[endpoint] = LoadReport{*std::move(response), clock_->Now()};
  }
}

void LoadPoller::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stop_) return;
  thread_ = std::thread([this] { Run(); });
}

void LoadPoller::Run() {
  for (;;) {
    PollOnce();
    std::unique_lock<std::mutex> lock(mu_);
    wake_.wait_for(lock, absl::ToChronoMilliseconds(options_.interval), [this] { return stop_; });
    if (stop_) return;
  }
}

absl::optional<LoadReport> LoadPoller::Latest(const std::string& endpoint) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = reports_.find(endpoint);
  if (it == reports_.end()) return absl::nullopt;
  if (clock_->Now() - it->second.received_at > options_.max_age) return absl::nullopt;
  return it->second;
}

}  // namespace tiermesh::router
