// The router's view of its backends' load: a background thread asks every
// endpoint of the policy for InferenceService.GetLoad on an interval (off the
// request path, each call with its own deadline), and the executor reads the
// latest report when it picks a replica (endpoint_choice.h), so that several
// endpoints of one backend are balanced by their reported load.
//
//   LoadPoller poller(&backends, &clock, LoadPollerOptions{});   // main
//   poller.SetEndpoints(PolledEndpoints(*policy));                // at start and on reload
//   poller.Start();                                               // the thread; or PollOnce()
//   ExecutorDeps deps{..., /*loads=*/&poller};
//
// A report older than max_age (an endpoint that stopped answering) counts as
// no report: the endpoint is then scored as "unknown" (half busy), neither
// trusted nor excluded. A failed GetLoad keeps the previous report until it
// is stale. Endpoints are polled one after another; a black-holed endpoint
// costs the round at most `timeout`.
#ifndef TIERMESH_SERVICES_ROUTER_LOAD_POLLER_H_
#define TIERMESH_SERVICES_ROUTER_LOAD_POLLER_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"

#include "services/router/backend_client.h"
#include "services/router/clock.h"
#include "services/router/endpoint_choice.h"
#include "services/router/policy.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::router {

struct LoadReport {
  v1::GetLoadResponse response;
  absl::Time received_at;
};

// Where the executor reads load reports from. Thread-safe.
class LoadSource {
 public:
  virtual ~LoadSource() = default;
  // The latest report of `endpoint` that is not stale; nullopt: none.
  virtual absl::optional<LoadReport> Latest(const std::string& endpoint) const = 0;
};

// The EndpointLoad of `model` on `endpoint` from its report (pure):
// no report: unreported; service not ready: not usable; the model listed and
// READY: `accepting`, slots, waiting requests and KV-cache use; UNLOADED or
// LOADING (managed local models load on demand): unreported (unknown load)
// while accepting, else not usable; FAILED, UNLOADING, UNAVAILABLE: not
// usable; the model not listed: unreported.
// `caller_key`: the call carries the caller's own provider key (byok). A
// cloud-proxy reports "not ready" / MODEL_STATE_UNAVAILABLE when the
// OPERATOR has no key, which says nothing about the caller's: such a report
// then counts as none (unknown), so byok traffic still reaches it.
EndpointLoad EndpointLoadFromReport(const std::string& endpoint, const std::string& model,
                                    const absl::optional<LoadReport>& report,
                                    int32_t router_in_flight, bool caller_key = false);

// Every distinct endpoint of the policy's backends, sorted.
std::vector<std::string> PolledEndpoints(const Policy& policy);

struct LoadPollerOptions {
  absl::Duration interval = absl::Seconds(1);
  // Deadline of each GetLoad call.
  absl::Duration timeout = absl::Milliseconds(500);
  // Reports older than this are ignored.
  absl::Duration max_age = absl::Seconds(5);
};

class LoadPoller final : public LoadSource {
 public:
  // `backends` and `clock` must outlive the poller.
  LoadPoller(BackendClientFactory* backends, const Clock* clock, const LoadPollerOptions& options);
  ~LoadPoller() override;  // stops and joins the thread
  LoadPoller(const LoadPoller&) = delete;
  LoadPoller& operator=(const LoadPoller&) = delete;

  // The endpoints to poll from now on; reports of endpoints no longer listed
  // are dropped.
  void SetEndpoints(std::vector<std::string> endpoints);
  // Polls every endpoint once, on the calling thread.
  void PollOnce();
  // Starts the polling thread (once).
  void Start();

  absl::optional<LoadReport> Latest(const std::string& endpoint) const override;

 private:
  void Run();

  BackendClientFactory* const backends_;
  const Clock* const clock_;
  const LoadPollerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::vector<std::string> endpoints_;
  std::map<std::string, LoadReport> reports_;
  std::thread thread_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_LOAD_POLLER_H_
