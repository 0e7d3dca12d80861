// AttemptExecutor against in-memory fake backends: which candidates are
// called, in which order, and how each error class ends or continues the
// request (table-driven), plus what the executor forwards on each call.
#include "services/router/executor.h"

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "services/router/decide.h"
#include "services/router/failure.h"
#include "services/router/policy.h"
#include "tests/unit/router/fake_clock.h"
#include "tests/unit/router/test_policy.h"

namespace tiermesh::router {
namespace {

using ::testing::ElementsAreArray;
using ::tiermesh::router::testing::FakeClock;

struct RecordedCall {
  std::string endpoint;
  std::string model;
  CallOptions call;
};

// Answers by model: scripted errors first, then OK with a fixed usage.
class FakeBackends final : public BackendClientFactory {
 public:
  explicit FakeBackends(const Clock* clock) : clock_(clock) {}

  void Script(const std::string& model, std::vector<absl::Status> errors) {
    std::lock_guard<std::mutex> lock(mu_);
    for (absl::Status& s : errors) script_[model].push_back(std::move(s));
  }
  std::vector<RecordedCall> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  std::shared_ptr<BackendClient> ForEndpoint(const std::string& endpoint) override {
    return std::make_shared<Client>(this, endpoint);
  }

 private:
  class Client final : public BackendClient {
   public:
    Client(FakeBackends* owner, std::string endpoint)
        : owner_(owner), endpoint_(std::move(endpoint)) {}
    absl::StatusOr<v1::GenerateResponse> Generate(const v1::GenerateRequest& request,
                                                  const CallOptions& call) override {
      return owner_->Answer(endpoint_, request, call);
    }
    absl::Status GenerateStream(const v1::GenerateStreamRequest&, const CallOptions&,
                                const StreamHandler&) override {
      return absl::UnimplementedError("fake: no streams");
    }
    absl::StatusOr<v1::GetLoadResponse> GetLoad(const v1::GetLoadRequest&,
                                                const CallOptions&) override {
      return v1::GetLoadResponse();
    }

   private:
    FakeBackends* const owner_;
    const std::string endpoint_;
  };

  absl::StatusOr<v1::GenerateResponse> Answer(const std::string& endpoint,
                                              const v1::GenerateRequest& request,
                                              const CallOptions& call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back({endpoint, request.model(), call});
    auto& queue = script_[request.model()];
    if (!queue.empty()) {
      absl::Status s = queue.front();
      queue.pop_front();
      return s;
    }
    (void)clock_;
    v1::GenerateResponse response;
    response.mutable_message()->set_content(absl::StrCat("answer from ", request.model()));
    response.mutable_usage()->set_prompt_tokens(100);
    response.mutable_usage()->set_completion_tokens(50);
    response.set_model(request.model());
    return response;
  }

  const Clock* const clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<absl::Status>> script_;
  std::vector<RecordedCall> calls_;
};

struct Harness {
  explicit Harness(const BudgetLimits& limits = {})
      : policy(ParsePolicyText(testing::kTestPolicyYaml).value()),
        backends(&clock),
        breakers(&clock),
        retry_budget(policy.resilience.retry_budget, &clock),
        budget(limits, &clock),
        executor({&backends, &breakers, &retry_budget, &budget, &clock}) {
    breakers.Sync(policy);
  }

  // Decides for a simple chat request of `user_tier` and executes it.
  ExecutionResult Run(UserTier user_tier, Decision* decision_out = nullptr) {
    RequestFacts facts;
    facts.task = TaskType::kChat;
    facts.complexity = 0.1;
    facts.prompt_tokens = 100;
    facts.user_tier = user_tier;
    RuntimeView view;
    view.breakers = breakers.States();
    view.budget = budget.Snapshot("acme").view;
    absl::StatusOr<Decision> decision = Decide(policy, facts, view);
    EXPECT_TRUE(decision.ok()) << decision.status();
    decision_storage = *decision;
    if (decision_out != nullptr) *decision_out = decision_storage;
    ExecuteRequest request;
    request.policy = &policy;
    request.decision = &decision_storage;
    request.caller.tenant = "acme";
    request.caller.user_tier = user_tier;
    request.request.add_messages()->set_content("hello");
    request.call.deadline = clock.Now() + absl::Minutes(5);
    request.call.request_id = "req-1";
    request.call.provider_key = "sk-caller";
    request.prompt_tokens = 100;
    return executor.Execute(request);
  }

  FakeClock clock;
  Policy policy;
  FakeBackends backends;
  BreakerSet breakers;
  RetryBudget retry_budget;
  InMemoryBudgetStore budget;
  AttemptExecutor executor;
  Decision decision_storage;
};

std::vector<std::string> AttemptSummary(const ExecutionResult& r) {
  std::vector<std::string> out;
  for (const v1::Attempt& a : r.attempts) {
    out.push_back(absl::StrCat(a.backend(), ":", a.code(), a.fallback_reason().empty() ? "" : "->",
                               a.fallback_reason()));
  }
  return out;
}

struct Case {
  std::string name;
  std::map<std::string, std::vector<absl::Status>> script;
  BudgetLimits limits;
  absl::StatusCode want_code;
  std::string want_model;  // empty: no answer
  std::vector<std::string> want_attempts;
};

absl::Status ContextTooLong() {
  return WithReason(absl::OutOfRangeError("prompt too long"), kReasonContextLengthExceeded);
}

BudgetLimits SpentGlobalCap() {
  BudgetLimits limits;
  limits.global_daily = 0;
  return limits;
}

TEST(AttemptExecutorTest, ErrorClassesDecideFallbacks) {
  const std::vector<Case> cases = {
      {"first answers", {}, {}, absl::StatusCode::kOk, "tiny", {"tiny:OK"}},
      {"unavailable falls back",
       {{"tiny", {absl::UnavailableError("down")}}},
       {},
       absl::StatusCode::kOk,
       "tiny-coder",
       {"tiny:UNAVAILABLE->unavailable", "tiny-coder:OK"}},
      {"invalid argument never retries",
       {{"tiny", {absl::InvalidArgumentError("bad temperature")}}},
       {},
       absl::StatusCode::kInvalidArgument,
       "",
       {"tiny:INVALID_ARGUMENT"}},
      {"content policy never retries",
       {{"tiny", {WithReason(absl::FailedPreconditionError("refused"), kReasonContentPolicy)}}},
       {},
       absl::StatusCode::kFailedPrecondition,
       "",
       {"tiny:FAILED_PRECONDITION"}},
      {"saturated local spills to cloud",
       {{"tiny", {absl::ResourceExhaustedError("busy")}},
        {"tiny-coder", {absl::ResourceExhaustedError("busy")}}},
       {},
       absl::StatusCode::kOk,
       "cloud-cheap",
       {"tiny:RESOURCE_EXHAUSTED->saturated", "tiny-coder:RESOURCE_EXHAUSTED->saturated",
        "cheap:OK"}},
      {"context length skips same-size windows",
       {{"tiny", {ContextTooLong()}}},
       {},
       absl::StatusCode::kOk,
       "cloud-cheap",
       {"tiny:OUT_OF_RANGE->context_length", "cheap:OK"}},
      {"max attempts stops the chain",
       {{"tiny", {absl::UnavailableError("down")}},
        {"tiny-coder", {absl::UnavailableError("down")}},
        {"cloud-cheap", {absl::UnavailableError("down")}}},
       {},
       absl::StatusCode::kUnavailable,
       "",
       {"tiny:UNAVAILABLE->unavailable", "tiny-coder:UNAVAILABLE->unavailable",
        "cheap:UNAVAILABLE"}},
      {"budget exhausted keeps to local tiers",
       {{"tiny", {absl::UnavailableError("down")}},
        {"tiny-coder", {absl::UnavailableError("down")}}},
       SpentGlobalCap(),
       absl::StatusCode::kUnavailable,
       "",
       {"tiny:UNAVAILABLE->unavailable", "tiny-coder:UNAVAILABLE"}},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    Harness h(tc.limits);
    for (const auto& [model, errors] : tc.script) h.backends.Script(model, errors);
    ExecutionResult r = h.Run(UserTier::kPaid);
    EXPECT_EQ(r.status.code(), tc.want_code) << r.status;
    if (!tc.want_model.empty()) {
      EXPECT_EQ(r.response.model(), tc.want_model);
      ASSERT_GE(r.served_candidate, 0);
      EXPECT_EQ(h.decision_storage.candidates[r.served_candidate].model, tc.want_model);
    } else {
      EXPECT_EQ(r.served_candidate, -1);
    }
    EXPECT_THAT(AttemptSummary(r), ElementsAreArray(tc.want_attempts));
    // The caller's key goes to cloud backends only; every call has the
    // request id and a deadline within the attempt timeout.
    for (const RecordedCall& call : h.backends.calls()) {
      const bool cloud = call.model.rfind("cloud-", 0) == 0;
      EXPECT_EQ(call.call.provider_key, cloud ? "sk-caller" : "") << call.model;
      EXPECT_EQ(call.call.request_id, "req-1");
      EXPECT_LE(call.call.deadline, h.clock.Now() + h.policy.resilience.attempt_timeout);
    }
  }
}

TEST(AttemptExecutorTest, CloudAnswerIsChargedToTheBudget) {
  Harness h;
  h.backends.Script("tiny", {absl::UnavailableError("down")});
  h.backends.Script("tiny-coder", {absl::UnavailableError("down")});
  ExecutionResult r = h.Run(UserTier::kPaid);
  ASSERT_OK(r.status);
  // 100 prompt tokens x $0.15/M + 50 x $0.60/M = 15'000 + 30'000 nano-USD.
  EXPECT_EQ(r.cost_nano_usd, 45'000);
  EXPECT_EQ(r.attempts.back().cost().nano_usd(), 45'000);
  BudgetSnapshot snap = h.budget.Snapshot("acme");
  EXPECT_EQ(snap.global_spent, 45'000);
  EXPECT_EQ(snap.global_reserved, 0);
  EXPECT_EQ(snap.cloud_fallbacks, 1);
}

TEST(AttemptExecutorTest, OpenCircuitIsSkippedAndRecorded) {
  Harness h;
  // Five consecutive failures open tiny's breaker (policy default).
  for (int i = 0; i < 5; ++i) {
    h.backends.Script("tiny", {absl::UnavailableError("down")});
    ExecutionResult r = h.Run(UserTier::kPaid);
    ASSERT_OK(r.status);
  }
  ASSERT_EQ(h.breakers.Get("tiny")->state(), BreakerState::kOpen);
  const size_t calls_before = h.backends.calls().size();
  // Decide already marks it ineligible; the executor then never calls it.
  ExecutionResult r = h.Run(UserTier::kPaid);
  ASSERT_OK(r.status);
  EXPECT_EQ(r.response.model(), "tiny-coder");
  EXPECT_EQ(h.backends.calls().size(), calls_before + 1);
}

TEST(AttemptExecutorTest, SpentRetryBudgetStopsFallbacks) {
  Harness h;
  RetryBudgetSettings none;
  none.ratio = 0;
  none.min_per_second = 0;
  h.retry_budget.UpdateSettings(none);
  h.backends.Script("tiny", {absl::UnavailableError("down")});
  ExecutionResult r = h.Run(UserTier::kPaid);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status.message()), ::testing::HasSubstr("retry budget"));
  EXPECT_EQ(r.calls, 1);
  EXPECT_THAT(AttemptSummary(r), ElementsAreArray({"tiny:UNAVAILABLE"}));
}

TEST(AttemptExecutorTest, PassedDeadlineMakesNoCall) {
  Harness h;
  RequestFacts facts;
  facts.task = TaskType::kChat;
  facts.user_tier = UserTier::kPaid;
  absl::StatusOr<Decision> decision = Decide(h.policy, facts, RuntimeView());
  ASSERT_OK(decision.status());
  ExecuteRequest request;
  request.policy = &h.policy;
  request.decision = &*decision;
  request.caller.tenant = "acme";
  request.caller.user_tier = UserTier::kPaid;
  request.call.deadline = h.clock.Now();
  ExecutionResult r = h.executor.Execute(request);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(h.backends.calls().empty());
}

TEST(AttemptExecutorTest, MissingInputsAreInvalidArgument) {
  Harness h;
  ExecutionResult r = h.executor.Execute(ExecuteRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tiermesh::router
