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
// was cut after its first delta). Not yet: escalate_from answers
// UNIMPLEMENTED (there is no request history to escalate from yet).
#ifndef TIERMESH_SERVICES_ROUTER_ROUTER_SERVICE_H_
#define TIERMESH_SERVICES_ROUTER_ROUTER_SERVICE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

#include "services/router/auth.h"
#include "services/router/backend_client.h"
#include "services/router/breaker.h"
#include "services/router/budget.h"
#include "services/router/classifier_client.h"
#include "services/router/clock.h"
#include "services/router/decide.h"
#include "services/router/executor.h"
#include "services/router/policy.h"
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
};

// The routing facts of a request: from its body, its classification (unset:
// the classifier did not answer) and the caller. INVALID_ARGUMENT for bad
// hints (a negative or non-finite max_cost_usd, an unknown priority).
[[nodiscard]] absl::StatusOr<RequestFacts> FactsFromRequest(
    const v1::ChatRequest& request, const v1::Classification* classification, const Caller& caller,
    bool streaming);

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
    std::string request_id;
    v1::Classification classification;
    RequestFacts facts;
    Decision decision;
    absl::Time deadline;
  };
  // Auth, validation, classification and the decision, shared by all calls.
  absl::StatusOr<Routed> Route(grpc::ServerContext* context, const v1::ChatRequest& request,
                               bool streaming);
  std::string NewRequestId();
  // The executor's input for a routed request; UNAUTHENTICATED for a byok
  // caller without its provider key.
  absl::StatusOr<ExecuteRequest> MakeExecuteRequest(grpc::ServerContext* context,
                                                    const Routed& routed,
                                                    const v1::ChatRequest& request) const;
  // The decision with every attempt and the candidate that served.
  void FillOutcome(const Routed& routed, ExecutionResult& result, v1::RoutingDecision* out) const;
  void Observe(const Routed& routed, const ExecutionResult& result, absl::Time start) const;

  const RouterDeps deps_;
  AttemptExecutor executor_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> policy_;
  std::mt19937_64 ids_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_ROUTER_SERVICE_H_
