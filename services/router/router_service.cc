#include "services/router/router_service.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/optional.h"

#include "services/common/status/status.h"
#include "services/common/tracing/propagation.h"
#include "services/common/tracing/span_context.h"
#include "services/router/money.h"

namespace tiermesh::router {
namespace {

constexpr size_t kMaxRequestIdBytes = 128;
// The most a cost hint may say, as in the policy.
constexpr double kMaxCostHintUsd = 1e9;

absl::optional<std::string> Metadata(const grpc::ServerContext& context, const char* key) {
  const auto& md = context.client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return absl::nullopt;
  return std::string(it->second.data(), it->second.size());
}

TaskType FromProtoTask(v1::TaskType t) {
  switch (t) {
    case v1::TASK_TYPE_CHAT:
      return TaskType::kChat;
    case v1::TASK_TYPE_TOOL:
      return TaskType::kTool;
    case v1::TASK_TYPE_CODE:
      return TaskType::kCode;
    case v1::TASK_TYPE_MATH:
      return TaskType::kMath;
    case v1::TASK_TYPE_REASONING:
      return TaskType::kReasoning;
    default:
      return TaskType::kUnspecified;
  }
}

absl::StatusOr<Priority> FromProtoPriority(v1::Priority p) {
  switch (p) {
    case v1::PRIORITY_UNSPECIFIED:
      return Priority::kUnspecified;
    case v1::PRIORITY_COST:
      return Priority::kCost;
    case v1::PRIORITY_BALANCED:
      return Priority::kBalanced;
    case v1::PRIORITY_QUALITY:
      return Priority::kQuality;
    case v1::PRIORITY_LATENCY:
      return Priority::kLatency;
    default:
      return absl::InvalidArgumentError(absl::StrCat("hints.priority: unknown value ", p));
  }
}

void SetCost(NanoUsd nano, bool byok, v1::Cost* out) {
  out->set_nano_usd(nano);
  out->set_usd(NanoToUsd(nano));
  out->set_byok(byok);
}

std::string Outcome(const absl::Status& status) {
  if (status.ok()) return "ok";
  return absl::AsciiStrToLower(CodeName(status.code()));
}

}  // namespace

int64_t PromptTokenBound(const v1::ChatRequest& request) {
  // Role markers, separators and the like: real templates use under 10 per
  // message and under 30 per request.
  constexpr int64_t kPerMessage = 16;
  constexpr int64_t kPerTool = 16;
  constexpr int64_t kPerRequest = 64;
  int64_t bound = kPerRequest;
  for (const v1::ChatMessage& m : request.messages()) {
    bound += kPerMessage + static_cast<int64_t>(m.content().size() + m.name().size() +
                                                m.tool_call_id().size());
    for (const v1::ToolCall& call : m.tool_calls()) {
      bound += kPerTool + static_cast<int64_t>(call.id().size() + call.name().size() +
                                               call.arguments_json().size());
    }
  }
  for (const v1::Tool& tool : request.tools()) {
    bound += kPerTool + static_cast<int64_t>(tool.name().size() + tool.description().size() +
                                             tool.parameters_json_schema().size());
  }
  return bound;
}

absl::StatusOr<RequestFacts> FactsFromRequest(const v1::ChatRequest& request,
                                              const v1::Classification* classification,
                                              const Caller& caller, bool streaming) {
  RequestFacts facts;
  facts.classified = classification != nullptr;
  if (classification != nullptr) {
    facts.task = FromProtoTask(classification->task());
    const double complexity = classification->complexity();
    // A classifier bug must not fail the request: treat nonsense as unknown.
    if (std::isfinite(complexity) && complexity >= 0.0 && complexity <= 1.0) {
      facts.complexity = complexity;
    } else {
      facts.classified = false;
    }
    facts.pii = classification->pii_detected();
    facts.prompt_tokens = std::max<int64_t>(0, classification->approx_tokens());
  }
  if (!facts.classified || facts.prompt_tokens == 0) {
    // About four bytes per token: the classifier's estimate when it has none.
    int64_t bytes = 0;
    for (const v1::ChatMessage& m : request.messages()) bytes += m.content().size();
    facts.prompt_tokens = std::max(facts.prompt_tokens, (bytes + 3) / 4);
  }
  facts.prompt_token_bound = PromptTokenBound(request);
  facts.tools_offered = request.tools_size() > 0;
  facts.streaming = streaming;
  facts.user_tier = caller.user_tier;
  const v1::RoutingHints& hints = request.hints();
  TIERMESH_ASSIGN_OR_RETURN(facts.hints.priority, FromProtoPriority(hints.priority()));
  facts.hints.min_tier = hints.min_tier();
  facts.hints.max_tier = hints.max_tier();
  facts.hints.local_only = hints.local_only();
  if (hints.has_max_cost_usd()) {
    const double usd = hints.max_cost_usd();
    if (!std::isfinite(usd) || usd < 0.0 || usd > kMaxCostHintUsd) {
      return absl::InvalidArgumentError(
          absl::StrFormat("hints.max_cost_usd: %g is not between 0 and 1e9", usd));
    }
    // Rounded down: a limit must never allow more than asked.
    facts.hints.max_cost_nano_usd = static_cast<NanoUsd>(std::floor(usd * 1e9));
  }
  if (request.params().has_max_tokens()) facts.max_tokens = request.params().max_tokens();
  return facts;
}

void FillDecision(const Decision& decision, const Caller& caller, const std::string& request_id,
                  const v1::Classification& classification, v1::RoutingDecision* out) {
  out->set_request_id(request_id);
  *out->mutable_classification() = classification;
  out->set_rule(decision.rule);
  out->set_policy_version(decision.policy_version);
  for (const std::string& r : decision.reasons) out->add_reasons(r);
  out->set_user_tier(std::string(UserTierName(caller.user_tier)));
  out->set_escalation(decision.escalation);
  for (const std::string& d : decision.degraded) out->add_degraded(d);
  if (const Candidate* first = decision.FirstEligible()) {
    out->set_tier(first->tier);
    out->set_backend(first->backend);
    out->set_model(first->model);
  }
}

RouterServiceImpl::RouterServiceImpl(std::shared_ptr<const Policy> policy, const RouterDeps& deps)
    : deps_(deps),
      executor_({deps.backends, deps.breakers, deps.retry_budget, deps.budget, deps.clock,
                 deps.loads, deps.tracer}),
      policy_(std::move(policy)),
      ids_(std::random_device()()) {}

void RouterServiceImpl::SetPolicy(std::shared_ptr<const Policy> policy) {
  deps_.breakers->Sync(*policy);
  deps_.retry_budget->UpdateSettings(policy->resilience.retry_budget);
  deps_.budget->SetLimits(BudgetLimitsFromPolicy(*policy));
  std::lock_guard<std::mutex> lock(mu_);
  policy_ = std::move(policy);
}

std::shared_ptr<const Policy> RouterServiceImpl::policy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return policy_;
}

std::string RouterServiceImpl::NewRequestId() {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrFormat("req-%016x", ids_());
}

absl::StatusOr<RouterServiceImpl::Routed> RouterServiceImpl::Route(grpc::ServerContext* context,
                                                                   const v1::ChatRequest& request,
                                                                   bool streaming,
                                                                   absl::optional<Caller>* caller) {
  Routed routed;
  routed.policy = policy();
  const Policy& policy = *routed.policy;
  absl::optional<std::string> authorization = Metadata(*context, "authorization");
  absl::optional<absl::string_view> auth_view;
  if (authorization) auth_view = absl::string_view(*authorization);
  TIERMESH_ASSIGN_OR_RETURN(routed.caller, Authenticate(policy.callers, auth_view));
  if (caller != nullptr) *caller = routed.caller;

  const v1::ChatRequest* effective = &request;
  std::string escalate_from_tier;
  if (!request.escalate_from().empty()) {
    if (deps_.history == nullptr) {
      return absl::UnimplementedError("escalate_from: escalation is not enabled on this router");
    }
    if (request.escalate_from().size() > kMaxRequestIdBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("escalate_from: longer than ", kMaxRequestIdBytes, " bytes"));
    }
    TIERMESH_ASSIGN_OR_RETURN(HistoryEntry earlier,
                              deps_.history->Find(routed.caller.tenant, request.escalate_from()));
    if (policy.TierIndex(earlier.tier) < 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "escalate_from: request '", request.escalate_from(), "' was served by tier '",
          earlier.tier, "', which the current policy no longer has"));
    }
    if (request.messages_size() == 0) {
      TIERMESH_ASSIGN_OR_RETURN(v1::ChatRequest replay, EscalationRequest(request, earlier));
      routed.replayed = std::move(replay);
      effective = &*routed.replayed;
    }
    escalate_from_tier = std::move(earlier.tier);
  }
  if (effective->messages_size() == 0) {
    return absl::InvalidArgumentError("messages: at least one message is required");
  }
  if (request.request_id().size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id: longer than ", kMaxRequestIdBytes, " bytes"));
  }
  routed.request_id = request.request_id().empty() ? NewRequestId() : request.request_id();

  const absl::Time now = deps_.clock->Now();
  routed.deadline = absl::FromChrono(context->deadline());
  if (routed.deadline == absl::InfiniteFuture() ||
      routed.deadline > now + policy.resilience.attempt_timeout * policy.resilience.max_attempts) {
    // No (or a huge) caller deadline: the chain still ends.
    routed.deadline = now + policy.resilience.attempt_timeout * policy.resilience.max_attempts;
  }

  CallOptions classify_call;
  classify_call.deadline = std::min(routed.deadline, now + policy.classifier.timeout);
  classify_call.request_id = routed.request_id;
  // The interceptor put the server span's context in the call's metadata.
  const absl::optional<tracing::SpanContext> parent = tracing::ExtractGrpc(*context);
  tracing::Span classify_span =
      deps_.tracer.StartSpan("tiermesh.v1.ClassifierService/Classify", tracing::SpanKind::kClient,
                             parent.value_or(tracing::SpanContext()));
  classify_span.SetAttribute("rpc.system", "grpc");
  if (classify_span.context().IsValid()) {
    classify_call.traceparent = tracing::FormatTraceparent(classify_span.context());
    classify_call.tracestate = classify_span.context().trace_state;
  }
  v1::ClassifyRequest classify;
  *classify.mutable_messages() = effective->messages();
  *classify.mutable_tools() = effective->tools();
  absl::StatusOr<v1::Classification> classification =
      deps_.classifier->Classify(classify, classify_call);
  classify_span.RecordStatus(classification.status());
  classify_span.End();
  if (classification.ok()) routed.classification = *classification;
  TIERMESH_ASSIGN_OR_RETURN(
      routed.facts, FactsFromRequest(*effective, classification.ok() ? &*classification : nullptr,
                                     routed.caller, streaming));
  routed.facts.escalate_from_tier = std::move(escalate_from_tier);

  RuntimeView view;
  view.breakers = deps_.breakers->States();
  view.budget = deps_.budget->Snapshot(routed.caller.tenant).view;
  TIERMESH_ASSIGN_OR_RETURN(routed.decision, Decide(policy, routed.facts, view));
  if (!classification.ok()) {
    routed.decision.reasons.insert(
        routed.decision.reasons.begin(),
        absl::StrCat("classifier gave no answer (", CodeName(classification.status().code()),
                     "): routed unclassified"));
  }
  return routed;
}

absl::StatusOr<ExecuteRequest> RouterServiceImpl::MakeExecuteRequest(
    grpc::ServerContext* context, const Routed& routed, const v1::ChatRequest& request) const {
  ExecuteRequest exec;
  exec.policy = routed.policy.get();
  exec.decision = &routed.decision;
  exec.caller = routed.caller;
  *exec.request.mutable_messages() = request.messages();
  *exec.request.mutable_tools() = request.tools();
  *exec.request.mutable_tool_choice() = request.tool_choice();
  *exec.request.mutable_params() = request.params();
  exec.call.deadline = routed.deadline;
  exec.call.request_id = routed.request_id;
  if (absl::optional<tracing::SpanContext> parent = tracing::ExtractGrpc(*context)) {
    exec.parent = *std::move(parent);
  }
  if (routed.caller.user_tier == UserTier::kByok) {
    // The executor forwards it to cloud backends only.
    exec.call.provider_key = Metadata(*context, kProviderKeyMetadata).value_or("");
    if (exec.call.provider_key.empty()) {
      return absl::UnauthenticatedError(
          "byok callers must send their provider key in x-tiermesh-provider-key");
    }
  }
  exec.prompt_tokens = routed.facts.prompt_tokens;
  return exec;
}

void RouterServiceImpl::FillOutcome(const Routed& routed, ExecutionResult& result,
                                    v1::RoutingDecision* out) const {
  FillDecision(routed.decision, routed.caller, routed.request_id, routed.classification, out);
  for (v1::Attempt& a : result.attempts) *out->add_attempts() = std::move(a);
  result.attempts.clear();
  if (result.served_candidate >= 0) {
    const Candidate& served = routed.decision.candidates[result.served_candidate];
    out->set_tier(served.tier);
    out->set_backend(served.backend);
    out->set_model(served.model);
  }
}

void RouterServiceImpl::Observe(const Routed& routed, const ExecutionResult& result,
                                absl::Time start) const {
  if (deps_.metrics == nullptr) return;
  RouterMetrics& m = *deps_.metrics;
  const Candidate* served =
      result.served_candidate >= 0 ? &routed.decision.candidates[result.served_candidate] : nullptr;
  m.RecordRequest(served ? served->tier : "none", served ? served->backend : "none",
                  routed.caller.user_tier, Outcome(result.status), deps_.clock->Now() - start);
  for (size_t i = 0; i + 1 < result.attempts.size(); ++i) {
    const v1::Attempt& a = result.attempts[i];
    if (!a.fallback_reason().empty()) {
      m.RecordFallback(a.tier(), result.attempts[i + 1].tier(), a.fallback_reason());
    }
  }
  if (routed.decision.escalation) {
    m.RecordEscalation(routed.facts.escalate_from_tier, served ? served->tier : "none");
  }
  if (routed.caller.user_tier != UserTier::kByok) {
    for (const v1::Attempt& a : result.attempts) m.AddCost(a.tier(), a.backend(), a.cost().usd());
  }
  const BudgetSnapshot snap = deps_.budget->Snapshot(routed.caller.tenant);
  if (snap.view.global_remaining) {
    m.SetBudgetRemaining("global", NanoToUsd(*snap.view.global_remaining));
  }
  for (const char* reason :
       {"offline", "budget_free_local_only", "budget_paid_local_only", "cloud_fallback_limit"}) {
    const auto& d = routed.decision.degraded;
    m.SetDegraded(reason, std::find(d.begin(), d.end(), reason) != d.end());
  }
}

void RouterServiceImpl::Annotate(grpc::ServerContext* context, const Routed& routed,
                                 const ExecutionResult* result) const {
  if (deps_.server_spans == nullptr) return;
  tracing::Span* span = deps_.server_spans->Find(context);
  if (span == nullptr || !span->IsRecording()) return;
  span->SetAttribute("tiermesh.request_id", routed.request_id);
  span->SetAttribute("tiermesh.rule", routed.decision.rule);
  span->SetAttribute("tiermesh.policy_version", routed.decision.policy_version);
  span->SetAttribute("tiermesh.user_tier", UserTierName(routed.caller.user_tier));
  if (routed.decision.escalation) span->SetAttribute("tiermesh.escalation", true);
  const Candidate* planned = routed.decision.FirstEligible();
  const Candidate* served = result != nullptr && result->served_candidate >= 0
                                ? &routed.decision.candidates[result->served_candidate]
                                : planned;
  if (served != nullptr) {
    span->SetAttribute("tiermesh.tier", served->tier);
    span->SetAttribute("tiermesh.backend", served->backend);
  }
  if (result != nullptr)
    span->SetAttribute("tiermesh.attempts", static_cast<int64_t>(result->calls));
}

void RouterServiceImpl::ObserveRejected(const absl::optional<Caller>& caller,
                                        const absl::Status& status) const {
  if (deps_.metrics == nullptr) return;
  deps_.metrics->RecordRejected(caller ? UserTierName(caller->user_tier) : "unknown",
                                Outcome(status));
}

void RouterServiceImpl::Remember(const Routed& routed, const v1::ChatRequest& request,
                                 const ExecutionResult& result) const {
  if (deps_.history == nullptr || result.served_candidate < 0) return;
  HistoryEntry entry;
  entry.tier = routed.decision.candidates[result.served_candidate].tier;
  entry.request = ReplayableRequest(request);
  deps_.history->Record(routed.caller.tenant, routed.request_id, std::move(entry));
}

grpc::Status RouterServiceImpl::Chat(grpc::ServerContext* context, const v1::ChatRequest* request,
                                     v1::ChatResponse* response) {
  const absl::Time start = deps_.clock->Now();
  absl::optional<Caller> caller;
  absl::StatusOr<Routed> routed = Route(context, *request, /*streaming=*/false, &caller);
  if (!routed.ok()) {
    ObserveRejected(caller, routed.status());
    return ReplyStatus(context, routed.status());
  }
  const v1::ChatRequest& effective = Effective(*routed, *request);
  absl::StatusOr<ExecuteRequest> exec = MakeExecuteRequest(context, *routed, effective);
  if (!exec.ok()) {
    ObserveRejected(caller, exec.status());
    return ReplyStatus(context, exec.status());
  }
  ExecutionResult result = executor_.Execute(*exec);
  Observe(*routed, result, start);
  Annotate(context, *routed, &result);
  Remember(*routed, effective, result);
  if (!result.status.ok()) return ReplyStatus(context, result.status);

  FillOutcome(*routed, result, response->mutable_decision());
  *response->mutable_message() = result.response.message();
  response->set_finish_reason(result.response.finish_reason());
  *response->mutable_usage() = result.response.usage();
  SetCost(result.cost_nano_usd, routed->caller.user_tier == UserTier::kByok,
          response->mutable_cost());
  return grpc::Status::OK;
}

grpc::Status RouterServiceImpl::ChatStream(grpc::ServerContext* context,
                                           const v1::ChatStreamRequest* request,
                                           grpc::ServerWriter<v1::ChatStreamResponse>* writer) {
  const absl::Time start = deps_.clock->Now();
  absl::optional<Caller> caller;
  absl::StatusOr<Routed> routed = Route(context, request->request(), /*streaming=*/true, &caller);
  if (!routed.ok()) {
    ObserveRejected(caller, routed.status());
    return ReplyStatus(context, routed.status());
  }
  const v1::ChatRequest& effective = Effective(*routed, request->request());
  absl::StatusOr<ExecuteRequest> exec = MakeExecuteRequest(context, *routed, effective);
  if (!exec.ok()) {
    ObserveRejected(caller, exec.status());
    return ReplyStatus(context, exec.status());
  }

  v1::ChatStreamResponse event;
  FillDecision(routed->decision, routed->caller, routed->request_id, routed->classification,
               event.mutable_decision());
  if (!writer->Write(event)) return grpc::Status(grpc::StatusCode::CANCELLED, "client gone");
  absl::optional<absl::Time> first_delta;
  ExecutionResult result = executor_.ExecuteStream(*exec, [&](const v1::Delta& delta) {
    if (!first_delta) first_delta = deps_.clock->Now();
    v1::ChatStreamResponse out;
    *out.mutable_delta() = delta;
    return writer->Write(out);
  });
  Observe(*routed, result, start);
  Annotate(context, *routed, &result);
  Remember(*routed, effective, result);
  if (first_delta && deps_.metrics != nullptr && !result.attempts.empty()) {
    deps_.metrics->RecordTimeToFirstToken(result.attempts.back().tier(), *first_delta - start);
  }

  v1::ChatStreamResponse last;
  v1::ChatStreamSummary* summary = last.mutable_summary();
  summary->set_complete(result.status.ok());
  summary->set_finish_reason(result.response.finish_reason());
  *summary->mutable_usage() = result.response.usage();
  SetCost(result.cost_nano_usd, routed->caller.user_tier == UserTier::kByok,
          summary->mutable_cost());
  if (!result.status.ok()) summary->set_error(std::string(result.status.message()));
  FillOutcome(*routed, result, summary->mutable_decision());
  // The summary says what was served even when the stream ends non-OK.
  (void)writer->Write(last);
  return ReplyStatus(context, result.status);
}

grpc::Status RouterServiceImpl::Explain(grpc::ServerContext* context,
                                        const v1::ExplainRequest* request,
                                        v1::ExplainResponse* response) {
  absl::StatusOr<Routed> routed = Route(context, request->request(), /*streaming=*/false);
  if (!routed.ok()) return ReplyStatus(context, routed.status());
  Annotate(context, *routed, nullptr);
  FillDecision(routed->decision, routed->caller, routed->request_id, routed->classification,
               response->mutable_decision());
  for (const Candidate& c : routed->decision.candidates) {
    v1::Candidate* out = response->add_candidates();
    out->set_backend(c.backend);
    out->set_tier(c.tier);
    out->set_model(c.model);
    out->set_eligible(c.eligible);
    out->set_reason(c.reason);
    out->set_circuit_state(std::string(BreakerStateName(c.circuit_state)));
    SetCost(c.worst_case_nano_usd, routed->caller.user_tier == UserTier::kByok,
            out->mutable_worst_case_cost());
  }
  // No cap reads as +infinity.
  const BudgetSnapshot snap = deps_.budget->Snapshot(routed->caller.tenant);
  constexpr double kNoCap = std::numeric_limits<double>::infinity();
  response->set_tenant_budget_remaining_usd(
      snap.view.tenant_remaining ? NanoToUsd(*snap.view.tenant_remaining) : kNoCap);
  response->set_global_budget_remaining_usd(
      snap.view.global_remaining ? NanoToUsd(*snap.view.global_remaining) : kNoCap);
  return grpc::Status::OK;
}

}  // namespace tiermesh::router
