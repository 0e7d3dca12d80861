// The attempt executor: runs a Decision's eligible candidates in order until
// one answers, within one overall deadline (the caller's), a per-attempt
// timeout, the policy's maximum attempts and maximum extra fallback cost, and
// the retry budget; it updates circuit breakers, reserves each paid attempt's
// worst case in the BudgetStore before calling and settles (or releases) it
// after, and records every attempt, including candidates skipped at call
// time (open circuit, budget refused), as a tiermesh.v1.Attempt.
//
//   AttemptExecutor executor({&backends, &breakers, &retry_budget, &budget_store, &clock});
//   ExecuteRequest req;
//   req.policy = &policy; req.decision = &decision; req.caller = caller;
//   req.request = generate_request;          // model and request_id are set per attempt
//   req.call.deadline = caller_deadline; req.call.request_id = id;
//   ExecutionResult result = executor.Execute(req);
//   result.status;     // OK, or the error of the attempt that stopped the request
//   result.attempts;   // every attempt, in order
//
// Error classes (failure.h) decide what happens after a failed attempt:
// fall back to the next candidate, fall back only to a larger context window,
// or stop (the caller's problem: another backend would answer the same).
#ifndef TIERMESH_SERVICES_ROUTER_EXECUTOR_H_
#define TIERMESH_SERVICES_ROUTER_EXECUTOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "services/common/tracing/tracer.h"
#include "services/router/auth.h"
#include "services/router/backend_client.h"
#include "services/router/breaker.h"
#include "services/router/budget.h"
#include "services/router/clock.h"
#include "services/router/decide.h"
#include "services/router/endpoint_choice.h"
#include "services/router/load_poller.h"
#include "services/router/policy.h"
#include "services/router/retry_budget.h"
#include "tiermesh/v1/inference.pb.h"
#include "tiermesh/v1/router.pb.h"

namespace tiermesh::router {

// What the executor uses; none owned, all must outlive it.
struct ExecutorDeps {
  BackendClientFactory* backends = nullptr;
  BreakerSet* breakers = nullptr;
  RetryBudget* retry_budget = nullptr;
  BudgetStore* budget = nullptr;
  const Clock* clock = nullptr;
  // Backends' reported load (GetLoad), for the choice of replica; null: the
  // router's own in-flight counts only.
  const LoadSource* loads = nullptr;
  // Spans: one kClient span per backend attempt, child of the request's
  // span (ExecuteRequest::parent); Noop: none.
  tracing::Tracer tracer = tracing::Tracer::Noop();
};

struct ExecuteRequest {
  const Policy* policy = nullptr;
  const Decision* decision = nullptr;
  Caller caller;
  // The backend request; `model` and `request_id` are filled per attempt.
  v1::GenerateRequest request;
  // Deadline (the caller's), request id and byok key. The key is forwarded
  // to cloud backends only. The trace context of each attempt is set from
  // `parent` (call.traceparent here is ignored).
  CallOptions call;
  // The request's span (the server span): parent of every attempt's span.
  // Invalid: the request is not traced, and backends get no traceparent.
  tracing::SpanContext parent;
  // Approximate prompt tokens (for usage-based cost when a backend reports none).
  int64_t prompt_tokens = 0;
};

// Why the request moved on from a candidate without calling it.
inline constexpr char kSkipCircuitOpen[] = "circuit_open";
inline constexpr char kSkipBudget[] = "budget";
inline constexpr char kSkipFallbackCost[] = "fallback_cost_limit";
inline constexpr char kSkipCloudFallbackLimit[] = "cloud_fallback_limit";

struct ExecutionResult {
  absl::Status status;
  // The answer when status is OK.
  v1::GenerateResponse response;
  // Every attempt, in order; fallback_reason says why the next one followed.
  std::vector<v1::Attempt> attempts;
  // Index into decision->candidates of the candidate that answered (or, for a
  // stream cut after its first delta, that served part of it); -1: none.
  int served_candidate = -1;
  // Total cost of all attempts.
  NanoUsd cost_nano_usd = 0;
  // Backend calls made (skipped candidates not counted).
  int calls = 0;
  // Streaming: a delta reached the caller, so no fallback was possible after it.
  bool committed = false;
};

// What the caller of ExecuteStream receives: every delta of the attempt that
// serves. Returns false when the caller is gone (the attempt is cancelled).
using DeltaHandler = std::function<bool(const v1::Delta& delta)>;

class AttemptExecutor {
 public:
  explicit AttemptExecutor(const ExecutorDeps& deps);
  AttemptExecutor(const AttemptExecutor&) = delete;
  AttemptExecutor& operator=(const AttemptExecutor&) = delete;

  // Unary: runs attempts until one succeeds or the request must stop. Bad
  // input (no policy or decision) is INVALID_ARGUMENT; no eligible candidate
  // gives NoEligibleCandidateStatus.
  ExecutionResult Execute(const ExecuteRequest& request);

  // Streaming: as Execute, but each attempt streams. Before the first delta a
  // failure falls back invisibly; after it the request stops with the error
  // (result.committed) and the partial usage is charged. result.response then
  // holds the summary's finish reason, usage, cost and model.
  ExecutionResult ExecuteStream(const ExecuteRequest& request, const DeltaHandler& on_delta);

 private:
  struct AttemptOutcome {
    absl::Status status;
    v1::GenerateResponse response;  // on failure: usage so far, when known
    bool committed = false;
  };
  using AttemptFn = std::function<AttemptOutcome(
      BackendClient& client, const v1::GenerateRequest& request, const CallOptions& call)>;
  // `method`: the backend RPC's full name, for the attempt's span.
  ExecutionResult Run(const ExecuteRequest& request, const char* method, const AttemptFn& attempt);

  // The replica of `backend` to call now (least loaded: reported load and
  // the router's own in-flight calls), or NoUsableEndpointStatus.
  // `caller_key`: see EndpointLoadFromReport.
  absl::StatusOr<std::string> PickEndpoint(const BackendConfig& backend, bool caller_key);
  void EndCall(const std::string& endpoint);

  const ExecutorDeps deps_;
  std::mutex mu_;
  std::map<std::string, int32_t> in_flight_;
  uint64_t tie_break_ = 0;
};

// Why no replica of `backend` can take a call: RESOURCE_EXHAUSTED when one
// is up but not accepting (saturated: spill over), else UNAVAILABLE (not
// ready, model not ready); the message lists each endpoint's state.
absl::Status NoUsableEndpointStatus(const std::string& backend,
                                    const std::vector<EndpointLoad>& loads);

// Cost of a successful attempt: the backend's own figure when it gives one,
// else usage x price (rounded up).
NanoUsd AttemptCostNanoUsd(const BackendConfig& backend, const v1::GenerateResponse& response);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_EXECUTOR_H_
