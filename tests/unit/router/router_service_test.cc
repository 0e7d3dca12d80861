// RouterService in process over real gRPC on 127.0.0.1 port 0, with fake
// InferenceService (a local and a cloud one) and ClassifierService servers
// also in process: routing, fallback, auth, Explain and the metrics.
#include "services/router/router_service.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

#include "services/common/server/server.h"
#include "services/common/server/tracing_interceptor.h"
#include "services/common/status/status_matchers.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/tracer.h"
#include "services/router/auth.h"
#include "tests/unit/common/tracing/tracing_fakes.h"
#include "tests/unit/router/fake_clock.h"
#include "tests/unit/router/test_util.h"
#include "tiermesh/v1/classifier.grpc.pb.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tiermesh/v1/router.grpc.pb.h"

namespace tiermesh::router {
namespace {

using testing::MetricValue;

constexpr char kKey[] = "test-key-123";
constexpr char kByokKey[] = "byok-key-456";

std::string HexHash(absl::string_view key) {
  const std::array<uint8_t, 32> hash = HashApiKey(key);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(hash.data()), hash.size()));
}

std::string MetadataValue(const grpc::ServerContext& context, const std::string& key) {
  auto it = context.client_metadata().find(key);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

class FakeInference final : public v1::InferenceService::Service {
 public:
  explicit FakeInference(std::string name) : name_(std::move(name)) {}
  void FailWith(grpc::StatusCode code) { fail_code_ = static_cast<int>(code); }
  // Streams: one delta, then a summary with complete=false and UNAVAILABLE.
  void CutStreams() { cut_streams_ = true; }
  std::vector<std::string> provider_keys() const {
    std::lock_guard<std::mutex> lock(mu_);
    return provider_keys_;
  }
  std::vector<std::string> traceparents() const {
    std::lock_guard<std::mutex> lock(mu_);
    return traceparents_;
  }
  int calls() const { return calls_; }

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        v1::GenerateResponse* response) override {
    ++calls_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = context->client_metadata().find(kProviderKeyMetadata);
      provider_keys_.push_back(it == context->client_metadata().end()
                                   ? ""
                                   : std::string(it->second.data(), it->second.size()));
      traceparents_.push_back(MetadataValue(*context, "traceparent"));
    }
    if (context->deadline() == std::chrono::system_clock::time_point::max()) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "fake: call without a deadline");
    }
    if (fail_code_ != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(fail_code_.load()), "fake failure");
    }
    response->mutable_message()->set_role(v1::ROLE_ASSISTANT);
    response->mutable_message()->set_content("from " + name_ + " (" + request->model() + ")");
    response->set_finish_reason(v1::FINISH_REASON_STOP);
    response->mutable_usage()->set_prompt_tokens(1000);
    response->mutable_usage()->set_completion_tokens(1000);
    response->set_model(request->model());
    return grpc::Status::OK;
  }

  grpc::Status GenerateStream(grpc::ServerContext*, const v1::GenerateStreamRequest* request,
                              grpc::ServerWriter<v1::GenerateStreamResponse>* writer) override {
    ++calls_;
    if (fail_code_ != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(fail_code_.load()), "fake failure");
    }
    v1::GenerateStreamResponse event;
    event.mutable_delta()->set_content("from " + name_);
    writer->Write(event);
    v1::GenerateStreamResponse summary;
    summary.mutable_summary()->set_model(request->request().model());
    summary.mutable_summary()->mutable_usage()->set_prompt_tokens(1000);
    summary.mutable_summary()->mutable_usage()->set_completion_tokens(cut_streams_ ? 1 : 1000);
    if (cut_streams_) {
      summary.mutable_summary()->set_complete(false);
      summary.mutable_summary()->set_error("upstream cut");
      writer->Write(summary);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "upstream cut");
    }
    event.mutable_delta()->set_content(" (" + request->request().model() + ")");
    writer->Write(event);
    summary.mutable_summary()->set_complete(true);
    summary.mutable_summary()->set_finish_reason(v1::FINISH_REASON_STOP);
    writer->Write(summary);
    return grpc::Status::OK;
  }

 private:
  const std::string name_;
  std::atomic<int> fail_code_{0};
  std::atomic<int> calls_{0};
  std::atomic<bool> cut_streams_{false};
  mutable std::mutex mu_;
  std::vector<std::string> provider_keys_;
  std::vector<std::string> traceparents_;
};

class FakeClassifier final : public v1::ClassifierService::Service {
 public:
  std::vector<std::string> traceparents() const {
    std::lock_guard<std::mutex> lock(mu_);
    return traceparents_;
  }

  grpc::Status Classify(grpc::ServerContext* context, const v1::ClassifyRequest* request,
                        v1::ClassifyResponse* response) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      traceparents_.push_back(MetadataValue(*context, "traceparent"));
    }
    if (request->messages_size() == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no messages");
    }
    v1::Classification* c = response->mutable_classification();
    c->set_task(v1::TASK_TYPE_CHAT);
    c->set_complexity(0.2f);
    c->set_approx_tokens(20);
    return grpc::Status::OK;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> traceparents_;
};

constexpr char kPolicyTemplate[] = R"yaml(
name: svc
classifier: {endpoint: "127.0.0.1:$CLASSIFIER", timeout: 2s}
defaults: {max_tokens: 100}
tiers:
  - {name: local_fast, location: local}
  - {name: cloud_cheap, location: cloud}
backends:
  - name: tiny
    tier: local_fast
    endpoints: ["127.0.0.1:$LOCAL"]
    model: tiny
    price: {input_usd_per_mtok: 0, output_usd_per_mtok: 0}
    capabilities: {max_context_tokens: 4096}
  - name: cheap
    tier: cloud_cheap
    endpoints: ["127.0.0.1:$CLOUD"]
    model: cloud-cheap
    price: {input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60}
    capabilities: {tools: true, max_context_tokens: 128000}
fallback_chains:
  local_fast: [cloud_cheap]
rules:
  - {name: default, tier: local_fast}
budgets:
  global_daily_usd: 100
callers:
  keys:
    - {name: test, sha256: "$HASH", tenant: acme, user_tier: paid}
    - {name: own, sha256: "$BYOK_HASH", tenant: diy, user_tier: byok}
)yaml";

class RouterServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_server_ = testing::ServeInProcess("local", &local_);
    cloud_server_ = testing::ServeInProcess("cloud", &cloud_);
    classifier_server_ = testing::ServeInProcess("classifier", &classifier_service_);
    ASSERT_NE(local_server_, nullptr);
    ASSERT_NE(cloud_server_, nullptr);
    ASSERT_NE(classifier_server_, nullptr);
    const std::string yaml = absl::StrReplaceAll(
        kPolicyTemplate, {{"$CLASSIFIER", std::to_string(classifier_server_->port())},
                          {"$LOCAL", std::to_string(local_server_->port())},
                          {"$CLOUD", std::to_string(cloud_server_->port())},
                          {"$BYOK_HASH", HexHash(kByokKey)},
                          {"$HASH", HexHash(kKey)}});
    absl::StatusOr<Policy> policy = ParsePolicyText(yaml);
    ASSERT_OK(policy.status());
    policy_ = std::make_shared<const Policy>(*std::move(policy));

    classifier_client_ = std::make_unique<GrpcClassifierClient>(
        grpc::CreateChannel(policy_->classifier.endpoint, grpc::InsecureChannelCredentials()));
    breakers_ = std::make_unique<BreakerSet>(&clock_);
    breakers_->Sync(*policy_);
    retry_budget_ = std::make_unique<RetryBudget>(policy_->resilience.retry_budget, &clock_);
    budget_ = std::make_unique<InMemoryBudgetStore>(BudgetLimitsFromPolicy(*policy_), &clock_);
    absl::StatusOr<std::unique_ptr<RouterMetrics>> metrics = RouterMetrics::Create(registry_);
    ASSERT_OK(metrics.status());
    metrics_ = *std::move(metrics);
    service_ = std::make_unique<RouterServiceImpl>(
        policy_, RouterDeps{classifier_client_.get(), &backends_, breakers_.get(),
                            retry_budget_.get(), budget_.get(), &clock_, metrics_.get(),
                            /*loads=*/nullptr, &history_});
    router_server_ = testing::ServeInProcess("router", service_.get());
    ASSERT_NE(router_server_, nullptr);
    stub_ = v1::RouterService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", router_server_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (router_server_) router_server_->Shutdown();
  }

  static void Prepare(grpc::ClientContext* context, bool with_key = true) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (with_key) {
      context->AddMetadata("authorization", std::string("Bearer ") + kKey);
      context->AddMetadata(kProviderKeyMetadata, "sk-own");
    }
  }

  static v1::ChatRequest Hello() {
    v1::ChatRequest request;
    v1::ChatMessage* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content("hello there");
    return request;
  }

  FakeInference local_{"local"};
  FakeInference cloud_{"cloud"};
  FakeClassifier classifier_service_;
  std::unique_ptr<server::RunningServer> local_server_, cloud_server_, classifier_server_;
  RealClock clock_;
  std::shared_ptr<const Policy> policy_;
  std::unique_ptr<GrpcClassifierClient> classifier_client_;
  GrpcBackendClientFactory backends_;
  std::unique_ptr<BreakerSet> breakers_;
  std::unique_ptr<RetryBudget> retry_budget_;
  std::unique_ptr<InMemoryBudgetStore> budget_;
  prometheus::Registry registry_;
  std::unique_ptr<RouterMetrics> metrics_;
  InMemoryRequestHistory history_{RequestHistoryOptions{}, &clock_};
  std::unique_ptr<RouterServiceImpl> service_;
  std::unique_ptr<server::RunningServer> router_server_;
  std::unique_ptr<v1::RouterService::Stub> stub_;
};

TEST(PromptTokenBound, CountsEveryByteTheBackendSeesPlusTemplateAllowances) {
  v1::ChatRequest empty;
  EXPECT_EQ(PromptTokenBound(empty), 64);

  v1::ChatRequest one;
  one.add_messages()->set_content("Hi! How are you?");  // 16 bytes
  EXPECT_EQ(PromptTokenBound(one), 64 + 16 + 16);

  // Multi-byte UTF-8 counts by bytes: a tokenizer may give each byte a token.
  v1::ChatRequest cjk;
  cjk.add_messages()->set_content("\xe4\xbd\xa0\xe5\xa5\xbd");  // 2 characters, 6 bytes
  EXPECT_EQ(PromptTokenBound(cjk), 64 + 16 + 6);

  v1::ChatRequest tools;
  v1::ChatMessage* assistant = tools.add_messages();
  assistant->set_name("bot");                         // 3
  v1::ToolCall* call = assistant->add_tool_calls();
  call->set_id("c1");                                 // 2
  call->set_name("weather");                          // 7
  call->set_arguments_json("{\"city\":\"Oslo\"}");  // 15
  v1::ChatMessage* result = tools.add_messages();
  result->set_tool_call_id("c1");                     // 2
  result->set_content("sunny");                       // 5
  v1::Tool* tool = tools.add_tools();
  tool->set_name("weather");                          // 7
  tool->set_description("Current weather");           // 15
  tool->set_parameters_json_schema("{}");             // 2
  EXPECT_EQ(PromptTokenBound(tools), 64 + (16 + 3) + (16 + 2 + 7 + 15) + (16 + 2 + 5) +
                                         (16 + 7 + 15 + 2));
}

TEST_F(RouterServiceTest, ChatRoutesLocally) {
  grpc::ClientContext context;
  Prepare(&context);
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, Hello(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.message().content(), "from local (tiny)");
  const v1::RoutingDecision& d = response.decision();
  EXPECT_EQ(d.tier(), "local_fast");
  EXPECT_EQ(d.backend(), "tiny");
  EXPECT_EQ(d.rule(), "default");
  EXPECT_EQ(d.user_tier(), "paid");
  EXPECT_EQ(d.policy_version(), policy_->version);
  EXPECT_FALSE(d.request_id().empty());
  EXPECT_EQ(d.classification().task(), v1::TASK_TYPE_CHAT);
  ASSERT_EQ(d.attempts_size(), 1);
  EXPECT_EQ(d.attempts(0).code(), "OK");
  EXPECT_EQ(cloud_.calls(), 0);
  // Only byok callers' provider keys are forwarded (and only to cloud).
  EXPECT_THAT(local_.provider_keys(), ::testing::ElementsAre(""));
  EXPECT_EQ(
      MetricValue(
          registry_, "tiermesh_router_requests_total",
          {{"tier", "local_fast"}, {"backend", "tiny"}, {"user_tier", "paid"}, {"outcome", "ok"}}),
      1);
}

TEST_F(RouterServiceTest, UnavailableLocalFallsBackToCloud) {
  local_.FailWith(grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext context;
  Prepare(&context);
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, Hello(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.message().content(), "from cloud (cloud-cheap)");
  const v1::RoutingDecision& d = response.decision();
  EXPECT_EQ(d.tier(), "cloud_cheap");
  EXPECT_EQ(d.backend(), "cheap");
  ASSERT_EQ(d.attempts_size(), 2);
  EXPECT_EQ(d.attempts(0).backend(), "tiny");
  EXPECT_EQ(d.attempts(0).code(), "UNAVAILABLE");
  EXPECT_EQ(d.attempts(0).fallback_reason(), "unavailable");
  EXPECT_EQ(d.attempts(0).endpoint(), absl::StrCat("127.0.0.1:", local_server_->port()));
  EXPECT_EQ(d.attempts(1).backend(), "cheap");
  EXPECT_EQ(d.attempts(1).code(), "OK");
  EXPECT_TRUE(d.attempts(1).fallback_reason().empty());
  // 1000 x $0.15/M + 1000 x $0.60/M, charged to the operator's budget.
  EXPECT_EQ(response.cost().nano_usd(), 750'000);
  EXPECT_FALSE(response.cost().byok());
  EXPECT_EQ(budget_->Snapshot("acme").global_spent, 750'000);
  EXPECT_THAT(cloud_.provider_keys(), ::testing::ElementsAre(""));
  EXPECT_EQ(
      MetricValue(
          registry_, "tiermesh_router_fallbacks_total",
          {{"from_tier", "local_fast"}, {"to_tier", "cloud_cheap"}, {"reason", "unavailable"}}),
      1);
}

TEST_F(RouterServiceTest, ByokGoesToCloudWithTheCallersKey) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  context.AddMetadata("authorization", std::string("Bearer ") + kByokKey);
  context.AddMetadata(kProviderKeyMetadata, "sk-own");
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, Hello(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.decision().tier(), "cloud_cheap");
  EXPECT_EQ(response.decision().user_tier(), "byok");
  EXPECT_TRUE(response.cost().byok());
  EXPECT_THAT(cloud_.provider_keys(), ::testing::ElementsAre("sk-own"));
  // The caller's key pays: nothing is charged to the operator's budget.
  EXPECT_EQ(budget_->Snapshot("diy").global_spent, 0);
}

TEST_F(RouterServiceTest, ByokWithoutProviderKeyIsUnauthenticated) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  context.AddMetadata("authorization", std::string("Bearer ") + kByokKey);
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, Hello(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(cloud_.calls(), 0);
}

TEST_F(RouterServiceTest, InvalidArgumentIsNotRetried) {
  local_.FailWith(grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext context;
  Prepare(&context);
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, Hello(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(cloud_.calls(), 0);
}

TEST_F(RouterServiceTest, MissingKeyIsUnauthenticated) {
  grpc::ClientContext context;
  Prepare(&context, /*with_key=*/false);
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, Hello(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(local_.calls(), 0);
}

TEST_F(RouterServiceTest, EmptyRequestIsInvalid) {
  grpc::ClientContext context;
  Prepare(&context);
  v1::ChatResponse response;
  grpc::Status status = stub_->Chat(&context, v1::ChatRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RouterServiceTest, ExplainCallsNoBackend) {
  grpc::ClientContext context;
  Prepare(&context);
  v1::ExplainRequest request;
  *request.mutable_request() = Hello();
  v1::ExplainResponse response;
  grpc::Status status = stub_->Explain(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.decision().tier(), "local_fast");
  ASSERT_EQ(response.candidates_size(), 2);
  EXPECT_EQ(response.candidates(0).backend(), "tiny");
  EXPECT_EQ(response.candidates(1).backend(), "cheap");
  EXPECT_EQ(response.candidates(1).circuit_state(), "closed");
  EXPECT_EQ(local_.calls(), 0);
  EXPECT_EQ(cloud_.calls(), 0);
}

v1::ChatRequest EscalationOf(const std::string& request_id) {
  v1::ChatRequest request;
  request.set_escalate_from(request_id);
  return request;
}

TEST_F(RouterServiceTest, EscalationRerunsTheRequestAtTheNextTierUp) {
  v1::ChatResponse first;
  {
    grpc::ClientContext context;
    Prepare(&context);
    ASSERT_TRUE(stub_->Chat(&context, Hello(), &first).ok());
  }
  ASSERT_EQ(first.decision().tier(), "local_fast");
  grpc::ClientContext context;
  Prepare(&context);
  v1::ChatResponse second;
  // No messages: the remembered ones are re-run.
  grpc::Status status = stub_->Chat(&context, EscalationOf(first.decision().request_id()), &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(second.message().content(), "from cloud (cloud-cheap)");
  EXPECT_TRUE(second.decision().escalation());
  EXPECT_EQ(second.decision().tier(), "cloud_cheap");
  EXPECT_NE(second.decision().request_id(), first.decision().request_id());
  EXPECT_EQ(local_.calls(), 1);
  // Billed like any request.
  EXPECT_EQ(second.cost().nano_usd(), 750'000);
  EXPECT_EQ(budget_->Snapshot("acme").global_spent, 750'000);
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_escalations_total",
                        {{"from_tier", "local_fast"}, {"to_tier", "cloud_cheap"}}),
            1);
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_requests_total",
                        {{"tier", "cloud_cheap"},
                         {"backend", "cheap"},
                         {"user_tier", "paid"},
                         {"outcome", "ok"}}),
            1);

  // The escalated answer came from the highest tier: nothing is above it.
  grpc::ClientContext again;
  Prepare(&again);
  v1::ChatResponse third;
  status = stub_->Chat(&again, EscalationOf(second.decision().request_id()), &third);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(cloud_.calls(), 1);
}

TEST_F(RouterServiceTest, StreamEscalationWithItsOwnMessages) {
  v1::ChatResponse first;
  {
    grpc::ClientContext context;
    Prepare(&context);
    ASSERT_TRUE(stub_->Chat(&context, Hello(), &first).ok());
  }
  grpc::ClientContext context;
  Prepare(&context);
  v1::ChatStreamRequest request;
  *request.mutable_request() = Hello();
  request.mutable_request()->set_escalate_from(first.decision().request_id());
  auto reader = stub_->ChatStream(&context, request);
  v1::ChatStreamResponse event;
  std::string text;
  while (reader->Read(&event)) {
    if (event.has_delta()) text += event.delta().content();
    if (event.has_decision()) {
      EXPECT_TRUE(event.decision().escalation());
    }
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(text, "from cloud (cloud-cheap)");
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_escalations_total",
                        {{"from_tier", "local_fast"}, {"to_tier", "cloud_cheap"}}),
            1);
}

TEST_F(RouterServiceTest, EscalationOfAnotherTenantsRequestIsNotFound) {
  v1::ChatResponse first;
  {
    grpc::ClientContext context;
    Prepare(&context);
    ASSERT_TRUE(stub_->Chat(&context, Hello(), &first).ok());
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  context.AddMetadata("authorization", std::string("Bearer ") + kByokKey);
  context.AddMetadata(kProviderKeyMetadata, "sk-own");
  v1::ChatResponse response;
  grpc::Status status =
      stub_->Chat(&context, EscalationOf(first.decision().request_id()), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_EQ(cloud_.calls(), 0);
  EXPECT_EQ(
      MetricValue(
          registry_, "tiermesh_router_requests_total",
          {{"tier", "none"}, {"backend", "none"}, {"user_tier", "byok"}, {"outcome", "not_found"}}),
      1);

  grpc::ClientContext unknown;
  Prepare(&unknown);
  status = stub_->Chat(&unknown, EscalationOf("req-never-seen"), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(RouterServiceTest, RequestsRefusedBeforeRoutingAreCounted) {
  {
    grpc::ClientContext context;
    Prepare(&context, /*with_key=*/false);
    v1::ChatResponse response;
    EXPECT_EQ(stub_->Chat(&context, Hello(), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext context;
    Prepare(&context);
    v1::ChatStreamRequest empty;
    auto reader = stub_->ChatStream(&context, empty);
    v1::ChatStreamResponse event;
    while (reader->Read(&event)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_requests_total",
                        {{"tier", "none"},
                         {"backend", "none"},
                         {"user_tier", "unknown"},
                         {"outcome", "unauthenticated"}}),
            1);
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_requests_total",
                        {{"tier", "none"},
                         {"backend", "none"},
                         {"user_tier", "paid"},
                         {"outcome", "invalid_argument"}}),
            1);
}

TEST_F(RouterServiceTest, OneRequestIsOneTrace) {
  auto processor = std::make_shared<tracing::testing::CapturingProcessor>();
  tracing::TracerOptions tracer_options;
  tracer_options.processor = processor;
  tracing::Tracer tracer(tracer_options);
  auto spans = std::make_shared<server::ServerSpans>();
  RouterDeps deps{classifier_client_.get(),
                  &backends_,
                  breakers_.get(),
                  retry_budget_.get(),
                  budget_.get(),
                  &clock_,
                  metrics_.get()};
  deps.tracer = tracer;
  deps.server_spans = spans;
  RouterServiceImpl traced(policy_, deps);
  server::ServerOptions options;
  options.service_name = "traced-router";
  options.grpc_address = "127.0.0.1:0";
  options.drain_timeout = absl::Seconds(1);
  server::ServerComponents parts;
  parts.services = {&traced};
  parts.tracer = tracer;
  parts.server_spans = spans;
  absl::StatusOr<std::unique_ptr<server::RunningServer>> running =
      server::RunningServer::Start(options, parts);
  ASSERT_OK(running.status());
  (*running)->SetServing(true);
  auto stub = v1::RouterService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", (*running)->port()), grpc::InsecureChannelCredentials()));

  // The caller's own trace: the router continues it.
  const std::string caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  local_.FailWith(grpc::StatusCode::UNAVAILABLE);  // two attempts: local, then cloud
  grpc::ClientContext context;
  Prepare(&context);
  context.AddMetadata("traceparent", "00-" + caller_trace + "-00f067aa0ba902b7-01");
  v1::ChatResponse response;
  grpc::Status status = stub->Chat(&context, Hello(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  (*running)->Shutdown();
  // The server span ends when the call's context goes, just after the answer:
  // wait for it (bounded).
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (processor->Spans().size() < 4 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }

  std::map<std::string, tracing::SpanData> by_name;
  std::vector<tracing::SpanData> attempts;
  for (tracing::SpanData& span : processor->Spans()) {
    EXPECT_EQ(span.context.trace_id.ToHex(), caller_trace) << span.name;
    if (span.name == "tiermesh.v1.InferenceService/Generate") {
      attempts.push_back(span);
    } else {
      by_name[span.name] = span;
    }
  }
  ASSERT_EQ(by_name.count("tiermesh.v1.RouterService/Chat"), 1u);
  ASSERT_EQ(by_name.count("tiermesh.v1.ClassifierService/Classify"), 1u);
  const tracing::SpanData& server_span = by_name["tiermesh.v1.RouterService/Chat"];
  const tracing::SpanData& classify = by_name["tiermesh.v1.ClassifierService/Classify"];
  EXPECT_EQ(server_span.parent_span_id.ToHex(), "00f067aa0ba902b7");
  EXPECT_EQ(classify.parent_span_id, server_span.context.span_id);
  ASSERT_EQ(attempts.size(), 2u);
  for (const tracing::SpanData& a : attempts) {
    EXPECT_EQ(a.parent_span_id, server_span.context.span_id);
    EXPECT_EQ(a.kind, tracing::SpanKind::kClient);
  }
  EXPECT_EQ(attempts[0].status_code, tracing::SpanStatusCode::kError);
  EXPECT_EQ(attempts[1].status_code, tracing::SpanStatusCode::kOk);
  // Each callee continued its own client span.
  EXPECT_THAT(classifier_service_.traceparents(),
              ::testing::ElementsAre(tracing::FormatTraceparent(classify.context)));
  EXPECT_THAT(local_.traceparents(),
              ::testing::ElementsAre(tracing::FormatTraceparent(attempts[0].context)));
  EXPECT_THAT(cloud_.traceparents(),
              ::testing::ElementsAre(tracing::FormatTraceparent(attempts[1].context)));
  // The server span carries the decision.
  std::map<std::string, tracing::AttributeValue> attrs(server_span.attributes.begin(),
                                                       server_span.attributes.end());
  EXPECT_EQ(attrs["tiermesh.tier"], tracing::AttributeValue("cloud_cheap"));
  EXPECT_EQ(attrs["tiermesh.policy_version"], tracing::AttributeValue(policy_->version));
  EXPECT_EQ(attrs["tiermesh.attempts"], tracing::AttributeValue(int64_t{2}));
}

struct StreamResult {
  grpc::Status status;
  std::vector<v1::ChatStreamResponse> events;
  std::string text;
};

StreamResult ReadStream(v1::RouterService::Stub& stub, grpc::ClientContext* context) {
  v1::ChatStreamRequest request;
  v1::ChatMessage* m = request.mutable_request()->add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content("hello there");
  StreamResult out;
  auto reader = stub.ChatStream(context, request);
  v1::ChatStreamResponse event;
  while (reader->Read(&event)) {
    if (event.has_delta()) out.text += event.delta().content();
    out.events.push_back(event);
  }
  out.status = reader->Finish();
  return out;
}

TEST_F(RouterServiceTest, StreamSendsDecisionDeltasAndSummary) {
  grpc::ClientContext context;
  Prepare(&context);
  StreamResult r = ReadStream(*stub_, &context);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GE(r.events.size(), 3u);
  EXPECT_TRUE(r.events.front().has_decision());
  EXPECT_EQ(r.events.front().decision().tier(), "local_fast");
  EXPECT_EQ(r.text, "from local (tiny)");
  ASSERT_TRUE(r.events.back().has_summary());
  const v1::ChatStreamSummary& s = r.events.back().summary();
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.decision().backend(), "tiny");
  EXPECT_EQ(s.decision().attempts_size(), 1);
}

TEST_F(RouterServiceTest, StreamFallsBackInvisiblyBeforeTheFirstDelta) {
  local_.FailWith(grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext context;
  Prepare(&context);
  StreamResult r = ReadStream(*stub_, &context);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.text, "from cloud (cloud-cheap)");
  const v1::ChatStreamSummary& s = r.events.back().summary();
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.decision().tier(), "cloud_cheap");
  ASSERT_EQ(s.decision().attempts_size(), 2);
  EXPECT_EQ(s.decision().attempts(0).fallback_reason(), "unavailable");
}

TEST_F(RouterServiceTest, StreamCutAfterADeltaEndsNonOkWithSummary) {
  local_.CutStreams();
  grpc::ClientContext context;
  Prepare(&context);
  StreamResult r = ReadStream(*stub_, &context);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(r.text, "from local");
  ASSERT_TRUE(r.events.back().has_summary());
  const v1::ChatStreamSummary& s = r.events.back().summary();
  EXPECT_FALSE(s.complete());
  EXPECT_FALSE(s.error().empty());
  EXPECT_EQ(s.decision().backend(), "tiny");
  ASSERT_EQ(s.decision().attempts_size(), 1);
  EXPECT_EQ(s.decision().attempts(0).code(), "UNAVAILABLE");
  // No fallback after the caller saw tokens.
  EXPECT_EQ(cloud_.calls(), 0);
}

}  // namespace
}  // namespace tiermesh::router
