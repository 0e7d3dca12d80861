// GetLoad polling and replica choice: the pure mapping from a report to an
// EndpointLoad (table-driven), the poller against in-process fake
// InferenceService servers on port 0 (reports, staleness, failures), the
// executor balancing one backend's two replicas by their reported load, and
// one client span per backend attempt whose context reaches the backend.
#include "services/router/load_poller.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "grpcpp/server_context.h"
#include "gtest/gtest.h"

#include "services/common/server/server.h"
#include "services/common/status/status_matchers.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/tracer.h"
#include "services/router/budget.h"
#include "services/router/decide.h"
#include "services/router/executor.h"
#include "tests/unit/common/tracing/tracing_fakes.h"
#include "tests/unit/router/fake_clock.h"
#include "tests/unit/router/test_util.h"
#include "tiermesh/v1/inference.grpc.pb.h"

namespace tiermesh::router {
namespace {

using testing::FakeClock;

v1::ModelLoad Model(const std::string& name, v1::ModelState state, int busy, int total,
                    bool accepting = true) {
  v1::ModelLoad m;
  m.set_model(name);
  m.set_state(state);
  m.set_slots_busy(busy);
  m.set_slots_total(total);
  m.set_accepting(accepting);
  return m;
}

TEST(EndpointLoadFromReportTest, Table) {
  struct Case {
    const char* name;
    absl::optional<v1::GetLoadResponse> report;
    bool reported;
    bool usable;
    int32_t slots_busy;
  };
  auto response = [](bool ready, std::vector<v1::ModelLoad> models) {
    v1::GetLoadResponse r;
    r.set_ready(ready);
    for (v1::ModelLoad& m : models) *r.add_models() = std::move(m);
    return r;
  };
  const std::vector<Case> cases = {
      {"no report", absl::nullopt, false, true, 0},
      {"service not ready", response(false, {}), true, false, 0},
      {"model ready", response(true, {Model("m", v1::MODEL_STATE_READY, 3, 4)}), true, true, 3},
      {"model loadable on demand", response(true, {Model("m", v1::MODEL_STATE_UNLOADED, 0, 0)}),
       false, true, 0},
      {"model loading, accepting", response(true, {Model("m", v1::MODEL_STATE_LOADING, 0, 0)}),
       false, true, 0},
      {"model loading, refusing",
       response(true, {Model("m", v1::MODEL_STATE_LOADING, 0, 0, false)}), true, false, 0},
      {"model unloading", response(true, {Model("m", v1::MODEL_STATE_UNLOADING, 1, 4)}), true,
       false, 0},
      {"model failed", response(true, {Model("m", v1::MODEL_STATE_FAILED, 0, 4)}), true, false, 0},
      {"not accepting", response(true, {Model("m", v1::MODEL_STATE_READY, 4, 4, false)}), true,
       false, 4},
      {"other models only", response(true, {Model("x", v1::MODEL_STATE_READY, 1, 4)}), false, true,
       0},
      {"the right one of several",
       response(true, {Model("x", v1::MODEL_STATE_FAILED, 0, 4),
                       Model("m", v1::MODEL_STATE_READY, 2, 4)}),
       true, true, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::optional<LoadReport> report;
    if (c.report) report = LoadReport{*c.report, absl::Now()};
    const EndpointLoad load = EndpointLoadFromReport("e:1", "m", report, 1, /*caller_key=*/false);
    EXPECT_EQ(load.endpoint, "e:1");
    EXPECT_EQ(load.router_in_flight, 1);
    EXPECT_EQ(load.reported, c.reported);
    EXPECT_EQ(ScoreEndpoint(load).usable, c.usable);
    EXPECT_EQ(load.slots_busy, c.slots_busy);
  }
}

// A cloud-proxy without the operator's key reports itself not ready and its
// models UNAVAILABLE; a byok call (the caller's key) must still go there.
TEST(EndpointLoadFromReportTest, OperatorKeyStateDoesNotBindByokCalls) {
  v1::GetLoadResponse offline;
  offline.set_ready(false);
  *offline.add_models() = Model("m", v1::MODEL_STATE_UNAVAILABLE, 0, 0, false);
  v1::GetLoadResponse model_unavailable = offline;
  model_unavailable.set_ready(true);
  v1::GetLoadResponse saturated;
  saturated.set_ready(true);
  *saturated.add_models() = Model("m", v1::MODEL_STATE_READY, 4, 4, false);
  struct Case {
    const char* name;
    v1::GetLoadResponse report;
    bool caller_key;
    bool usable;
  };
  const std::vector<Case> cases = {
      {"offline, operator's call", offline, false, false},
      {"offline, byok call", offline, true, true},
      {"model unavailable, operator's call", model_unavailable, false, false},
      {"model unavailable, byok call", model_unavailable, true, true},
      {"saturated binds byok too", saturated, true, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const EndpointLoad load =
        EndpointLoadFromReport("e:1", "m", LoadReport{c.report, absl::Now()}, 0, c.caller_key);
    EXPECT_EQ(ScoreEndpoint(load).usable, c.usable);
  }
}

TEST(NoUsableEndpointStatusTest, SaturatedSpillsOverDownIsUnavailable) {
  EndpointLoad down;
  down.endpoint = "a:1";
  down.reported = true;
  down.ready = false;
  EndpointLoad loading = down;
  loading.endpoint = "b:2";
  loading.ready = true;
  loading.model_ready = false;
  EndpointLoad full = loading;
  full.endpoint = "c:3";
  full.model_ready = true;
  full.accepting = false;
  struct Case {
    const char* name;
    std::vector<EndpointLoad> loads;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"all down",
       {down, loading},
       absl::StatusCode::kUnavailable,
       "no usable endpoint for 'pool' (a:1: not ready; b:2: model not ready)"},
      {"one saturated",
       {down, full},
       absl::StatusCode::kResourceExhausted,
       "no usable endpoint for 'pool' (a:1: not ready; c:3: not accepting requests (saturated))"},
      {"none at all", {}, absl::StatusCode::kUnavailable, "no usable endpoint for 'pool' ()"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const absl::Status status = NoUsableEndpointStatus("pool", c.loads);
    EXPECT_EQ(status.code(), c.code);
    EXPECT_EQ(status.message(), c.message);
  }
}

TEST(PolledEndpointsTest, EveryDistinctEndpointSorted) {
  Policy policy;
  BackendConfig a;
  a.endpoints = {"b:2", "a:1"};
  BackendConfig b;
  b.endpoints = {"a:1", "c:3"};
  policy.backends = {a, b};
  EXPECT_EQ(PolledEndpoints(policy), (std::vector<std::string>{"a:1", "b:2", "c:3"}));
}

// In memory: every endpoint reports `busy` of 4 slots for model "m".
class InMemoryBackends final : public BackendClientFactory {
 public:
  std::shared_ptr<BackendClient> ForEndpoint(const std::string& endpoint) override {
    return std::make_shared<Client>(endpoint);
  }

 private:
  class Client final : public BackendClient {
   public:
    explicit Client(std::string endpoint) : endpoint_(std::move(endpoint)) {}
    absl::StatusOr<v1::GenerateResponse> Generate(const v1::GenerateRequest& request,
                                                  const CallOptions&) override {
      v1::GenerateResponse response;
      response.set_model(request.model());
      return response;
    }
    absl::Status GenerateStream(const v1::GenerateStreamRequest&, const CallOptions&,
                                const StreamHandler&) override {
      return absl::UnimplementedError("in-memory: no streams");
    }
    absl::StatusOr<v1::GetLoadResponse> GetLoad(const v1::GetLoadRequest&,
                                                const CallOptions&) override {
      v1::GetLoadResponse response;
      response.set_ready(true);
      *response.add_models() =
          Model("m", v1::MODEL_STATE_READY, static_cast<int>(endpoint_.size() % 4), 4);
      return response;
    }

   private:
    const std::string endpoint_;
  };
};

// Polling thread, endpoint changes (reloads) and readers at once: for TSan
// (the tsan preset), which sees std::mutex but not gRPC's own locking.
TEST(LoadPollerConcurrencyTest, PollReloadAndReadAtOnce) {
  InMemoryBackends backends;
  RealClock clock;
  LoadPollerOptions options;
  options.interval = absl::Milliseconds(1);
  LoadPoller poller(&backends, &clock, options);
  poller.SetEndpoints({"a:1", "bb:2"});
  poller.Start();
  std::atomic<bool> stop{false};
  std::atomic<int> seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        for (const char* e : {"a:1", "bb:2", "ccc:3"}) {
          if (absl::optional<LoadReport> r = poller.Latest(e)) {
            if (r->response.models_size() == 1) ++seen;
          }
        }
      }
    });
  }
  // At least 200 rounds, and on until the readers (which a loaded machine may not schedule at
  // once) have seen reports, within a bound.
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  for (int i = 0; i < 200 || (seen.load() == 0 && absl::Now() < give_up); ++i) {
    poller.SetEndpoints(i % 2 == 0 ? std::vector<std::string>{"a:1", "ccc:3"}
                                   : std::vector<std::string>{"a:1", "bb:2"});
    poller.PollOnce();  // alongside the thread's own polls
  }
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_GT(seen.load(), 0);
}

// An InferenceService that reports a settable load for model "m" and answers
// Generate, counting calls and keeping the traceparent it received.
class FakeReplica final : public v1::InferenceService::Service {
 public:
  void SetBusy(int busy) { busy_ = busy; }
  void FailLoad(bool fail) { fail_load_ = fail; }
  void SetReady(bool ready) { ready_ = ready; }
  int generates() const { return generates_; }
  int load_calls() const { return load_calls_; }
  std::vector<std::string> traceparents() const {
    std::lock_guard<std::mutex> lock(mu_);
    return traceparents_;
  }

  grpc::Status GetLoad(grpc::ServerContext* context, const v1::GetLoadRequest*,
                       v1::GetLoadResponse* response) override {
    ++load_calls_;
    if (context->deadline() == std::chrono::system_clock::time_point::max()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "fake: GetLoad without a deadline");
    }
    if (fail_load_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: down");
    response->set_ready(ready_);
    *response->add_models() = Model("m", v1::MODEL_STATE_READY, busy_, 4);
    return grpc::Status::OK;
  }

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        v1::GenerateResponse* response) override {
    ++generates_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = context->client_metadata().find("traceparent");
      traceparents_.push_back(it == context->client_metadata().end()
                                  ? ""
                                  : std::string(it->second.data(), it->second.size()));
    }
    response->mutable_message()->set_content("ok");
    response->set_finish_reason(v1::FINISH_REASON_STOP);
    response->set_model(request->model());
    return grpc::Status::OK;
  }

 private:
  std::atomic<int> busy_{0};
  std::atomic<bool> fail_load_{false};
  std::atomic<bool> ready_{true};
  std::atomic<int> generates_{0};
  std::atomic<int> load_calls_{0};
  mutable std::mutex mu_;
  std::vector<std::string> traceparents_;
};

constexpr char kPolicy[] = R"yaml(
classifier: {endpoint: "127.0.0.1:1"}
tiers:
  - {name: local_fast, location: local}
backends:
  - name: pool
    tier: local_fast
    endpoints: ["$A", "$B"]
    model: m
    price: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}
    capabilities: {max_context_tokens: 4096}
rules:
  - {name: default, tier: local_fast}
budgets: {global_daily_usd: 100}
callers:
  allow_anonymous: true
)yaml";

class LoadPollerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_a_ = testing::ServeInProcess("replica-a", &a_);
    server_b_ = testing::ServeInProcess("replica-b", &b_);
    ASSERT_NE(server_a_, nullptr);
    ASSERT_NE(server_b_, nullptr);
    endpoint_a_ = absl::StrCat("127.0.0.1:", server_a_->port());
    endpoint_b_ = absl::StrCat("127.0.0.1:", server_b_->port());
    LoadPollerOptions options;
    options.max_age = absl::Seconds(5);
    // Deadlines come from the fake clock, which lags real time by however long
    // set-up took (seconds under TSan): a long one keeps the test about load.
    options.timeout = absl::Seconds(60);
    poller_ = std::make_unique<LoadPoller>(&backends_, &clock_, options);
    poller_->SetEndpoints({endpoint_a_, endpoint_b_});
  }

  FakeReplica a_, b_;
  std::unique_ptr<server::RunningServer> server_a_, server_b_;
  std::string endpoint_a_, endpoint_b_;
  // Starts at real time: GetLoad deadlines are derived from it.
  FakeClock clock_{absl::Now()};
  GrpcBackendClientFactory backends_;
  std::unique_ptr<LoadPoller> poller_;
};

TEST_F(LoadPollerTest, KeepsEachEndpointsLatestReportUntilItIsStale) {
  a_.SetBusy(3);
  b_.SetBusy(1);
  EXPECT_FALSE(poller_->Latest(endpoint_a_).has_value());
  poller_->PollOnce();
  EXPECT_EQ(a_.load_calls(), 1);
  absl::optional<LoadReport> ra = poller_->Latest(endpoint_a_);
  absl::optional<LoadReport> rb = poller_->Latest(endpoint_b_);
  ASSERT_TRUE(ra.has_value());
  ASSERT_TRUE(rb.has_value());
  EXPECT_EQ(ra->response.models(0).slots_busy(), 3);
  EXPECT_EQ(rb->response.models(0).slots_busy(), 1);

  // A failing endpoint keeps its last report until it ages out.
  a_.FailLoad(true);
  clock_.Advance(absl::Seconds(3));
  poller_->PollOnce();
  ASSERT_TRUE(poller_->Latest(endpoint_a_).has_value());
  clock_.Advance(absl::Seconds(3));
  EXPECT_FALSE(poller_->Latest(endpoint_a_).has_value());
  EXPECT_TRUE(poller_->Latest(endpoint_b_).has_value());

  // An endpoint dropped from the policy loses its report and is not polled.
  poller_->SetEndpoints({endpoint_a_});
  EXPECT_FALSE(poller_->Latest(endpoint_b_).has_value());
  const int b_calls = b_.load_calls();
  poller_->PollOnce();
  EXPECT_EQ(b_.load_calls(), b_calls);
}

TEST_F(LoadPollerTest, UnreachableEndpointIsSkippedWithinItsDeadline) {
  RealClock real;
  LoadPollerOptions options;
  options.timeout = absl::Seconds(2);
  LoadPoller poller(&backends_, &real, options);
  poller.SetEndpoints({"127.0.0.1:1", endpoint_a_});
  const absl::Time start = absl::Now();
  poller.PollOnce();
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_FALSE(poller.Latest("127.0.0.1:1").has_value());
  EXPECT_TRUE(poller.Latest(endpoint_a_).has_value());
}

TEST_F(LoadPollerTest, ThreadPollsInTheBackground) {
  LoadPollerOptions options;
  options.interval = absl::Milliseconds(20);
  options.timeout = absl::Seconds(60);  // as in SetUp
  LoadPoller poller(&backends_, &clock_, options);
  poller.SetEndpoints({endpoint_a_});
  poller.Start();
  // Bounded wait for the thread's first rounds (real time, but no fixed sleep).
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (a_.load_calls() < 2 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_GE(a_.load_calls(), 2);
}

class ExecutorWithLoadsTest : public LoadPollerTest {
 protected:
  void SetUp() override {
    LoadPollerTest::SetUp();
    if (HasFatalFailure()) return;
    absl::StatusOr<Policy> policy =
        ParsePolicyText(absl::StrReplaceAll(kPolicy, {{"$A", endpoint_a_}, {"$B", endpoint_b_}}));
    ASSERT_OK(policy.status());
    policy_ = *std::move(policy);
    breakers_.Sync(policy_);
    RequestFacts facts;
    facts.task = TaskType::kChat;
    facts.prompt_tokens = 10;
    facts.user_tier = UserTier::kPaid;
    absl::StatusOr<Decision> decision = Decide(policy_, facts, RuntimeView());
    ASSERT_OK(decision.status());
    decision_ = *std::move(decision);
  }

  ExecuteRequest Request() {
    ExecuteRequest req;
    req.policy = &policy_;
    req.decision = &decision_;
    req.caller.tenant = "t";
    req.caller.user_tier = UserTier::kPaid;
    req.request.add_messages()->set_content("hi");
    req.call.deadline = absl::Now() + absl::Seconds(10);
    req.call.request_id = "req-1";
    return req;
  }

  Policy policy_;
  Decision decision_;
  BreakerSet breakers_{&clock_};
  RetryBudget retry_budget_{RetryBudgetSettings{}, &clock_};
  InMemoryBudgetStore budget_{BudgetLimits{}, &clock_};
};

TEST_F(ExecutorWithLoadsTest, ReplicasAreBalancedByReportedLoad) {
  AttemptExecutor executor(
      {&backends_, &breakers_, &retry_budget_, &budget_, &clock_, poller_.get()});
  a_.SetBusy(3);  // 3 of 4 slots busy
  b_.SetBusy(0);
  poller_->PollOnce();
  for (int i = 0; i < 6; ++i) ASSERT_OK(executor.Execute(Request()).status);
  EXPECT_EQ(a_.generates(), 0);
  EXPECT_EQ(b_.generates(), 6);

  // The load moves: so do the requests.
  a_.SetBusy(0);
  b_.SetBusy(4);
  poller_->PollOnce();
  for (int i = 0; i < 4; ++i) ASSERT_OK(executor.Execute(Request()).status);
  EXPECT_EQ(a_.generates(), 4);
  EXPECT_EQ(b_.generates(), 6);
}

TEST_F(ExecutorWithLoadsTest, NoReplicaReadyIsUnavailableWithoutACall) {
  AttemptExecutor executor(
      {&backends_, &breakers_, &retry_budget_, &budget_, &clock_, poller_.get()});
  a_.SetReady(false);
  b_.SetReady(false);
  poller_->PollOnce();
  ExecutionResult result = executor.Execute(Request());
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable) << result.status;
  EXPECT_THAT(std::string(result.status.message()), ::testing::HasSubstr("not ready"));
  ASSERT_EQ(result.attempts.size(), 1u);
  EXPECT_EQ(result.attempts[0].code(), "UNAVAILABLE");
  EXPECT_EQ(result.calls, 0);
  EXPECT_EQ(a_.generates() + b_.generates(), 0);
}

TEST_F(ExecutorWithLoadsTest, WithoutReportsReplicasShare) {
  AttemptExecutor executor({&backends_, &breakers_, &retry_budget_, &budget_, &clock_, nullptr});
  for (int i = 0; i < 6; ++i) ASSERT_OK(executor.Execute(Request()).status);
  EXPECT_EQ(a_.generates() + b_.generates(), 6);
  EXPECT_GT(a_.generates(), 0);
  EXPECT_GT(b_.generates(), 0);
}

TEST_F(ExecutorWithLoadsTest, OneClientSpanPerAttemptReachesTheBackend) {
  auto processor = std::make_shared<tracing::testing::CapturingProcessor>();
  tracing::TracerOptions options;
  options.processor = processor;
  tracing::Tracer tracer(options);
  ExecutorDeps deps{&backends_, &breakers_, &retry_budget_, &budget_, &clock_, poller_.get()};
  deps.tracer = tracer;
  AttemptExecutor executor(deps);
  // The request's (server) span, as the interceptor would have it.
  tracing::Span server =
      tracer.StartSpan("tiermesh.v1.RouterService/Chat", tracing::SpanKind::kServer);
  ExecuteRequest req = Request();
  req.parent = server.context();
  ASSERT_OK(executor.Execute(req).status);
  server.End();

  std::vector<tracing::SpanData> spans = processor->Spans();
  ASSERT_EQ(spans.size(), 2u);
  const tracing::SpanData& attempt = spans[0];
  EXPECT_EQ(attempt.name, "tiermesh.v1.InferenceService/Generate");
  EXPECT_EQ(attempt.kind, tracing::SpanKind::kClient);
  EXPECT_EQ(attempt.context.trace_id, server.context().trace_id);
  EXPECT_EQ(attempt.parent_span_id, server.context().span_id);
  EXPECT_EQ(attempt.status_code, tracing::SpanStatusCode::kOk);
  std::map<std::string, tracing::AttributeValue> attrs(attempt.attributes.begin(),
                                                       attempt.attributes.end());
  EXPECT_EQ(attrs["tiermesh.backend"], tracing::AttributeValue("pool"));
  EXPECT_EQ(attrs["tiermesh.tier"], tracing::AttributeValue("local_fast"));
  // The backend continues the attempt's span, not the server span.
  std::vector<std::string> seen = a_.traceparents();
  for (const std::string& t : b_.traceparents()) seen.push_back(t);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], tracing::FormatTraceparent(attempt.context));
}

}  // namespace
}  // namespace tiermesh::router

namespace tiermesh::router {
namespace {

// A backend that was down when the router first called it (started after the router, or
// restarted) is used as soon as it is up: NewMeshChannel's reconnect backoff is short.
TEST(MeshChannelTest, ABackendThatComesUpLaterIsReachedAtOnce) {
  int port = 0;
  {
    // A port nobody listens on yet.
    FakeReplica unused;
    std::unique_ptr<server::RunningServer> probe = testing::ServeInProcess("probe", &unused);
    ASSERT_NE(probe, nullptr);
    port = probe->port();
  }
  GrpcBackendClientFactory backends;
  std::shared_ptr<BackendClient> client = backends.ForEndpoint(absl::StrCat("127.0.0.1:", port));
  CallOptions call;
  call.deadline = absl::Now() + absl::Seconds(1);
  EXPECT_FALSE(client->GetLoad(v1::GetLoadRequest(), call).ok());  // nothing there yet
  FakeReplica replica;
  server::ServerOptions options;
  options.service_name = "late";
  options.grpc_address = absl::StrCat("127.0.0.1:", port);
  server::ServerComponents parts;
  parts.services = {&replica};
  absl::StatusOr<std::unique_ptr<server::RunningServer>> late =
      server::RunningServer::Start(options, parts);
  ASSERT_TRUE(late.ok()) << late.status();
  const absl::Time up = absl::Now();
  bool reached = false;
  while (!reached && absl::Now() - up < absl::Seconds(10)) {
    call.deadline = absl::Now() + absl::Milliseconds(200);
    reached = client->GetLoad(v1::GetLoadRequest(), call).ok();
    if (!reached) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(reached);
  // gRPC's default backoff would wait about 1 s (and grow towards 120 s in longer outages).
  EXPECT_LT(absl::Now() - up, absl::Milliseconds(500));
}

}  // namespace
}  // namespace tiermesh::router
