// RouterService over gRPC: authenticates the caller from `authorization`
// metadata, classifies the request (ClassifierClient), decides (Decide) and
// runs the attempts (AttemptExecutor); Explain stops after the decision. The
// handlers only adapt: the decisions live in the pure core (decide.h,
// failure.h, budget.h) and in the executor.
//
//   RouterServiceImpl service(policy, {&classifier, &backends, &breakers, &retry_budget,
//                                      &budget_store, &clock, metrics.get()});
//   parts.services = {&service};                 // server::RunServer
//   service.SetPolicy(new_policy);               // hot reload
//
// ChatStream sends the decision first, then the deltas of the attempt that
// serves, then a summary (complete=false and a non-OK status when the answer
// was cut after its first delta).
//
// Escalation: every served request is remembered in the RequestHistory (its
// tier and body, per tenant). A request with escalate_from=<id> of the same
// tenant is routed from the tier above the one that served <id> (Decide's
// escalate_from_tier), billed like any request and counted in
// tiermesh_router_escalations_total; it may carry no messages, and then the
// remembered ones are re-run (with the escalation's own hints). An unknown,
// expired or other tenant's id is NOT_FOUND; an escalation of an answer from
// the highest tier is FAILED_PRECONDITION. Without a history (deps.history
// null) escalate_from answers UNIMPLEMENTED.
//
// Requests refused before a backend is chosen (authentication, bad input, an
// unknown escalation, no eligible backend) are counted in
// tiermesh_router_requests_total with tier="none" and the code as outcome.
#ifndef TIERMESH_SERVICES_ROUTER_ROUTER_SERVICE_H_
#define TIERMESH_SERVICES_ROUTER_ROUTER_SERVICE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/optional.h"
#include "grpcpp/server_context.h"

#include "services/common/server/tracing_interceptor.h"
#include "services/common/tracing/tracer.h"
#include "services/router/auth.h"
#include "services/router/backend_client.h"
#include "services/router/breaker.h"
#include "services/router/budget.h"
#include "services/router/classifier_client.h"
#include "services/router/clock.h"
#include "services/router/decide.h"
#include "services/router/executor.h"
#include "services/router/load_poller.h"
#include "services/router/policy.h"
#include "services/router/request_history.h"
#include "services/router/retry_budget.h"
#include "services/router/router_metrics.h"
#include "tiermesh/v1/router.grpc.pb.h"

namespace tiermesh::router {

// None owned; all must outlive the service. `metrics` may be null. `clock`
// must be real time (RealClock): request deadlines come from gRPC.
struct RouterDeps {
  ClassifierClient* classifier = nullptr;
  BackendClientFactory* backends = nullptr;
  BreakerSet* breakers = nullptr;
  RetryBudget* retry_budget = nullptr;
  BudgetStore* budget = nullptr;
  const Clock* clock = nullptr;
  RouterMetrics* metrics = nullptr;
  // Backends' polled load (GetLoad), for the choice of replica; may be null.
  const LoadSource* loads = nullptr;
  // Recent requests, for escalate_from; null: escalation is not offered.
  RequestHistory* history = nullptr;
  // Client spans for the classifier call (the executor makes the attempts'),
  // children of the call's server span; Noop: none.
  tracing::Tracer tracer = tracing::Tracer::Noop();
  // The server spans of the tracing interceptor, to tag the request's span
  // with the decision (tier, rule, policy version); may be null.
  std::shared_ptr<server::ServerSpans> server_spans = nullptr;
};

// The routing facts of a request: from its body, its classification (unset:
// the classifier did not answer) and the caller. INVALID_ARGUMENT for bad
// hints (a negative or non-finite max_cost_usd, an unknown priority).
[[nodiscard]] absl::StatusOr<RequestFacts> FactsFromRequest(
    const v1::ChatRequest& request, const v1::Classification* classification, const Caller& caller,
    bool streaming);

// An upper bound on the prompt tokens of `request` under any tokenizer that
// a backend may use: every token covers at least one byte of UTF-8 text
// (byte-level BPE, SentencePiece with byte fallback), so the bytes of every
// text the backend sees (contents, names, tool calls, tool definitions), plus
// a generous allowance for the chat template's special tokens per message and
// per tool. Budget reservations use it (RequestFacts::prompt_token_bound).
[[nodiscard]] int64_t PromptTokenBound(const v1::ChatRequest& request);

// Fills the decision part of a response (no attempts).
void FillDecision(const Decision& decision, const Caller& caller, const std::string& request_id,
                  const v1::Classification& classification, v1::RoutingDecision* out);

class RouterServiceImpl final : public v1::RouterService::Service {
 public:
  RouterServiceImpl(std::shared_ptr<const Policy> policy, const RouterDeps& deps);

  // Serves later requests with `policy` (in-flight ones keep theirs) and
  // updates breakers, the retry budget and budget limits.
  void SetPolicy(std::shared_ptr<const Policy> policy);
  std::shared_ptr<const Policy> policy() const;

  grpc::Status Chat(grpc::ServerContext* context, const v1::ChatRequest* request,
                    v1::ChatResponse* response) override;
  grpc::Status ChatStream(grpc::ServerContext* context, const v1::ChatStreamRequest* request,
                          grpc::ServerWriter<v1::ChatStreamResponse>* writer) override;
  grpc::Status Explain(grpc::ServerContext* context, const v1::ExplainRequest* request,
                       v1::ExplainResponse* response) override;

 private:
  struct Routed {
    std::shared_ptr<const Policy> policy;
    Caller caller;
    // An escalation without messages: the remembered request it re-runs.
    absl::optional<v1::ChatRequest> replayed;
    std::string request_id;
    v1::Classification classification;
    RequestFacts facts;
    Decision decision;
    absl::Time deadline;
  };
  // Auth, validation, escalation lookup, classification and the decision,
  // shared by all calls. `caller` is set as soon as the caller is known.
  absl::StatusOr<Routed> Route(grpc::ServerContext* context, const v1::ChatRequest& request,
                               bool streaming, absl::optional<Caller>* caller = nullptr);
  // The request that runs: the replayed one of an escalation, else `request`.
  static const v1::ChatRequest& Effective(const Routed& routed, const v1::ChatRequest& request) {
    return routed.replayed ? *routed.replayed : request;
  }
  // Counts a request refused before routing (when metrics are on).
  void ObserveRejected(const absl::optional<Caller>& caller, const absl::Status& status) const;
  // Remembers a served request for later escalations.
  void Remember(const Routed& routed, const v1::ChatRequest& request,
                const ExecutionResult& result) const;
  std::string NewRequestId();
  // The executor's input for a routed request; UNAUTHENTICATED for a byok
  // caller without its provider key.
  absl::StatusOr<ExecuteRequest> MakeExecuteRequest(grpc::ServerContext* context,
                                                    const Routed& routed,
                                                    const v1::ChatRequest& request) const;
  // The decision with every attempt and the candidate that served.
  void FillOutcome(const Routed& routed, ExecutionResult& result, v1::RoutingDecision* out) const;
  void Observe(const Routed& routed, const ExecutionResult& result, absl::Time start) const;
  // Tags the call's server span with the decision and its outcome.
  void Annotate(grpc::ServerContext* context, const Routed& routed,
                const ExecutionResult* result) const;

  const RouterDeps deps_;
  AttemptExecutor executor_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> policy_;
  std::mt19937_64 ids_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_ROUTER_SERVICE_H_
