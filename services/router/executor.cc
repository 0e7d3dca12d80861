#include "services/router/executor.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/optional.h"

#include "services/common/status/status.h"
#include "services/common/tracing/span_context.h"
#include "services/router/endpoint_choice.h"
#include "services/router/failure.h"
#include "services/router/money.h"

namespace tiermesh::router {
namespace {

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

v1::Attempt NewAttempt(const Candidate& c) {
  v1::Attempt a;
  a.set_backend(c.backend);
  a.set_tier(c.tier);
  a.set_model(c.model);
  return a;
}

std::string ErrorText(const absl::Status& status) {
  const std::string reason = ErrorReason(status);
  if (reason.empty()) return std::string(status.message());
  return absl::StrCat(reason, ": ", status.message());
}

}  // namespace

absl::Status NoUsableEndpointStatus(const std::string& backend,
                                    const std::vector<EndpointLoad>& loads) {
  bool saturated = false;
  std::vector<std::string> why;
  for (const EndpointLoad& load : loads) {
    if (load.reported && load.ready && load.model_ready && !load.accepting) saturated = true;
    why.push_back(absl::StrCat(load.endpoint, ": ", ScoreEndpoint(load).why));
  }
  const std::string message =
      absl::StrCat("no usable endpoint for '", backend, "' (", absl::StrJoin(why, "; "), ")");
  return saturated ? absl::ResourceExhaustedError(message) : absl::UnavailableError(message);
}

NanoUsd AttemptCostNanoUsd(const BackendConfig& backend, const v1::GenerateResponse& response) {
  if (response.cost().nano_usd() > 0) return response.cost().nano_usd();
  return AddNanoUsd(
      TokenCostNanoUsd(response.usage().prompt_tokens(), backend.price.input_nano_per_mtok),
      TokenCostNanoUsd(response.usage().completion_tokens(), backend.price.output_nano_per_mtok));
}

AttemptExecutor::AttemptExecutor(const ExecutorDeps& deps) : deps_(deps) {}

absl::StatusOr<std::string> AttemptExecutor::PickEndpoint(const BackendConfig& backend,
                                                          bool caller_key) {
  std::vector<absl::optional<LoadReport>> reports(backend.endpoints.size());
  if (deps_.loads != nullptr) {
    for (size_t i = 0; i < backend.endpoints.size(); ++i) {
      reports[i] = deps_.loads->Latest(backend.endpoints[i]);
    }
  }
  std::vector<EndpointLoad> loads;
  loads.reserve(backend.endpoints.size());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < backend.endpoints.size(); ++i) {
      const std::string& endpoint = backend.endpoints[i];
      auto it = in_flight_.find(endpoint);
      loads.push_back(EndpointLoadFromReport(endpoint, backend.model, reports[i],
                                             it == in_flight_.end() ? 0 : it->second, caller_key));
    }
    absl::optional<size_t> pick = ChooseEndpoint(loads, tie_break_++);
    if (pick) {
      ++in_flight_[loads[*pick].endpoint];
      return loads[*pick].endpoint;
    }
  }
  return NoUsableEndpointStatus(backend.name, loads);
}

void AttemptExecutor::EndCall(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_flight_.find(endpoint);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

ExecutionResult AttemptExecutor::Execute(const ExecuteRequest& req) {
  return Run(
      req, "tiermesh.v1.InferenceService/Generate",
      [](BackendClient& client, const v1::GenerateRequest& request, const CallOptions& call) {
        AttemptOutcome out;
        absl::StatusOr<v1::GenerateResponse> response = client.Generate(request, call);
        if (response.ok()) {
          out.response = *std::move(response);
        } else {
          out.status = response.status();
        }
        return out;
      });
}

ExecutionResult AttemptExecutor::ExecuteStream(const ExecuteRequest& req,
                                               const DeltaHandler& on_delta) {
  return Run(req, "tiermesh.v1.InferenceService/GenerateStream",
             [&on_delta](BackendClient& client, const v1::GenerateRequest& request,
                         const CallOptions& call) {
               AttemptOutcome out;
               v1::GenerateStreamRequest stream_request;
               *stream_request.mutable_request() = request;
               bool summarized = false;
               bool complete = false;
               out.status = client.GenerateStream(
                   stream_request, call, [&](const v1::GenerateStreamResponse& event) {
                     if (event.has_delta()) {
                       out.committed = true;
                       if (!on_delta(event.delta())) return false;
                     } else if (event.has_summary()) {
                       const v1::StreamSummary& summary = event.summary();
                       summarized = true;
                       complete = summary.complete();
                       out.response.set_finish_reason(summary.finish_reason());
                       *out.response.mutable_usage() = summary.usage();
                       *out.response.mutable_cost() = summary.cost();
                       out.response.set_model(summary.model());
                       *out.response.mutable_timings() = summary.timings();
                     }
                     return true;
                   });
               // An OK end must carry a complete summary, or the answer may be cut.
               if (out.status.ok() && (!summarized || !complete)) {
                 out.status =
                     absl::DataLossError("backend stream ended OK without a complete summary");
               }
               return out;
             });
}

ExecutionResult AttemptExecutor::Run(const ExecuteRequest& req, const char* method,
                                     const AttemptFn& attempt_fn) {
  ExecutionResult result;
  if (req.policy == nullptr || req.decision == nullptr) {
    result.status = absl::InvalidArgumentError("executor: no policy or decision");
    return result;
  }
  const Policy& policy = *req.policy;
  const Decision& decision = *req.decision;
  if (decision.FirstEligible() == nullptr) {
    result.status = NoEligibleCandidateStatus(decision);
    return result;
  }
  deps_.retry_budget->RecordRequest();

  const bool byok = req.caller.user_tier == UserTier::kByok;
  // Attempt spans are children of the request's span (the server span).
  const tracing::SpanContext& parent = req.parent;
  absl::Status last = absl::UnavailableError("no candidate could be tried");
  NanoUsd extra_cost = 0;
  // After a context-length failure only larger windows are worth a call.
  int64_t need_context_above = 0;

  auto skip = [&](const Candidate& c, absl::StatusCode code, const char* why,
                  const std::string& message) {
    v1::Attempt a = NewAttempt(c);
    a.set_code(std::string(CodeName(code)));
    a.set_error(message);
    a.set_fallback_reason(why);
    result.attempts.push_back(std::move(a));
    // A real backend error says more than a skip, so it is kept.
    if (result.calls == 0) last = absl::Status(code, message);
  };

  for (size_t i = 0; i < decision.candidates.size(); ++i) {
    const Candidate& c = decision.candidates[i];
    if (!c.eligible) continue;
    if (need_context_above > 0 && c.max_context_tokens <= need_context_above) continue;
    if (result.calls >= policy.resilience.max_attempts) break;
    const absl::Time now = deps_.clock->Now();
    if (now >= req.call.deadline) {
      last = absl::DeadlineExceededError(
          absl::StrCat("request deadline passed after ", result.calls, " attempt(s)"));
      break;
    }
    const BackendConfig* backend = policy.FindBackend(c.backend);
    if (backend == nullptr) {
      skip(c, absl::StatusCode::kFailedPrecondition, "misconfigured",
           absl::StrCat("backend '", c.backend, "' is not in the policy"));
      continue;
    }
    if (c.fallback && !byok && decision.max_extra_fallback_cost_nano_usd.has_value() &&
        AddNanoUsd(extra_cost, c.worst_case_nano_usd) >
            *decision.max_extra_fallback_cost_nano_usd) {
      skip(c, absl::StatusCode::kResourceExhausted, kSkipFallbackCost,
           absl::StrCat("fallbacks would exceed the extra cost limit of ",
                        FormatUsd(*decision.max_extra_fallback_cost_nano_usd)));
      continue;
    }
    if (result.calls > 0 && !deps_.retry_budget->TryAcquireRetry()) {
      // An outage must not multiply upstream load: stop with the last error.
      last = absl::Status(last.code(),
                          absl::StrCat(last.message(), " (retry budget spent: no fallback)"));
      break;
    }

    std::shared_ptr<CircuitBreaker> breaker = deps_.breakers->Get(c.backend);
    absl::optional<BreakerPermit> permit;
    if (breaker != nullptr) {
      permit = breaker->TryAcquire();
      if (!permit) {
        skip(c, absl::StatusCode::kUnavailable, kSkipCircuitOpen,
             absl::StrCat("circuit of '", c.backend, "' is open"));
        continue;
      }
    }
    auto record = [&](BreakerOutcome outcome) {
      if (breaker != nullptr) breaker->Record(*permit, outcome);
    };

    // byok calls are paid by the caller's key: nothing to reserve.
    const NanoUsd worst = byok ? 0 : c.worst_case_nano_usd;
    absl::StatusOr<Reservation> reservation =
        deps_.budget->Reserve({req.caller.tenant, req.caller.user_tier, worst});
    if (!reservation.ok()) {
      record(BreakerOutcome::kIgnored);
      skip(c, reservation.status().code(), kSkipBudget, ErrorText(reservation.status()));
      continue;
    }
    auto release = [&] {
      // Fails only for a reservation that is not outstanding, which this
      // code never passes.
      absl::Status released = deps_.budget->Release(*reservation);
      (void)released;
    };
    if (c.cloud_fallback && !deps_.budget->TryCountCloudFallback()) {
      record(BreakerOutcome::kIgnored);
      release();
      skip(c, absl::StatusCode::kResourceExhausted, kSkipCloudFallbackLimit,
           "daily cloud-fallback limit reached");
      continue;
    }
    // A byok call to the cloud uses the caller's key, whatever the operator's.
    absl::StatusOr<std::string> picked =
        PickEndpoint(*backend, byok && c.location == TierLocation::kCloud);
    if (!picked.ok()) {
      record(BreakerOutcome::kIgnored);
      release();
      skip(c, picked.status().code(),
           picked.status().code() == absl::StatusCode::kResourceExhausted ? "saturated"
                                                                          : "unavailable",
           std::string(picked.status().message()));
      continue;
    }
    const std::string endpoint = *std::move(picked);

    CallOptions call = req.call;
    call.deadline = std::min(req.call.deadline, now + policy.resilience.attempt_timeout);
    if (c.location != TierLocation::kCloud) call.provider_key.clear();
    v1::GenerateRequest backend_request = req.request;
    backend_request.set_model(c.model);
    backend_request.set_request_id(req.call.request_id);

    tracing::Span span = deps_.tracer.StartSpan(method, tracing::SpanKind::kClient, parent);
    span.SetAttribute("rpc.system", "grpc");
    span.SetAttribute("server.address", endpoint);
    span.SetAttribute("tiermesh.attempt", static_cast<int64_t>(result.calls + 1));
    span.SetAttribute("tiermesh.backend", c.backend);
    span.SetAttribute("tiermesh.tier", c.tier);
    span.SetAttribute("tiermesh.model", c.model);
    // The backend continues this attempt's span (a disabled tracer passes
    // the parent's context on unchanged).
    call.traceparent.clear();
    call.tracestate.clear();
    if (span.context().IsValid()) {
      call.traceparent = tracing::FormatTraceparent(span.context());
      call.tracestate = span.context().trace_state;
    }

    std::shared_ptr<BackendClient> client = deps_.backends->ForEndpoint(endpoint);
    AttemptOutcome outcome = attempt_fn(*client, backend_request, call);
    const absl::Time end = deps_.clock->Now();
    span.RecordStatus(outcome.status);
    if (outcome.committed) span.SetAttribute("tiermesh.committed", true);
    span.End();
    EndCall(endpoint);
    ++result.calls;
    if (c.fallback) extra_cost = AddNanoUsd(extra_cost, c.worst_case_nano_usd);

    v1::Attempt attempt = NewAttempt(c);
    attempt.set_endpoint(endpoint);
    SetDuration(end - now, attempt.mutable_latency());
    if (outcome.status.ok()) {
      const NanoUsd cost = AttemptCostNanoUsd(*backend, outcome.response);
      absl::Status settled = deps_.budget->Settle(*reservation, byok ? 0 : cost);
      (void)settled;  // as for Release: the reservation is outstanding here
      record(BreakerOutcome::kSuccess);
      attempt.set_code("OK");
      *attempt.mutable_usage() = outcome.response.usage();
      attempt.mutable_cost()->set_nano_usd(cost);
      attempt.mutable_cost()->set_usd(NanoToUsd(cost));
      attempt.mutable_cost()->set_byok(byok);
      result.attempts.push_back(std::move(attempt));
      result.cost_nano_usd = AddNanoUsd(result.cost_nano_usd, cost);
      result.response = std::move(outcome.response);
      result.committed = outcome.committed;
      result.served_candidate = static_cast<int>(i);
      result.status = absl::OkStatus();
      return result;
    }

    const absl::Status& status = outcome.status;
    const FailureClass failure = ClassifyFailure(status.code(), ErrorReason(status));
    if (outcome.committed) {
      // Tokens reached the caller: what was generated was spent.
      const NanoUsd cost = AttemptCostNanoUsd(*backend, outcome.response);
      absl::Status settled = deps_.budget->Settle(*reservation, byok ? 0 : cost);
      (void)settled;  // outstanding here, as above
      *attempt.mutable_usage() = outcome.response.usage();
      attempt.mutable_cost()->set_nano_usd(cost);
      attempt.mutable_cost()->set_usd(NanoToUsd(cost));
      attempt.mutable_cost()->set_byok(byok);
      result.cost_nano_usd = AddNanoUsd(result.cost_nano_usd, cost);
      result.response = std::move(outcome.response);
      result.committed = true;
      result.served_candidate = static_cast<int>(i);
    } else {
      release();
    }
    record(failure.counts_for_breaker ? BreakerOutcome::kFailure : BreakerOutcome::kIgnored);
    attempt.set_code(std::string(CodeName(status.code())));
    attempt.set_error(ErrorText(status));
    if (failure.fallback && !outcome.committed) attempt.set_fallback_reason(failure.label);
    result.attempts.push_back(std::move(attempt));
    last = status;
    // After the first delta the caller has part of an answer: no fallback.
    if (!failure.fallback || outcome.committed) break;
    if (failure.larger_context) {
      need_context_above = std::max(need_context_above, c.max_context_tokens);
    }
  }
  // Nothing followed the last attempt.
  if (!result.attempts.empty()) result.attempts.back().clear_fallback_reason();
  result.status = last;
  return result;
}

}  // namespace tiermesh::router
