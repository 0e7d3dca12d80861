// CloudInferenceService in-process: a real gRPC server on 127.0.0.1:0, the
// libcurl transport and the fake provider. Per provider: unary, streaming,
// usage and cost exact against the fake's ledger, error mapping with trailing
// metadata (reason, retry-after-ms), cut streams; and client-side rate limits
// (no upstream call), offline mode, BYOK with a canary key that must appear in
// no log line, metric or error, and cancellation closing the upstream.
#include "services/cloud_proxy/inference_service.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "prometheus/text_serializer.h"

#include "services/cloud_proxy/pricing.h"
#include "services/common/server/tracing_interceptor.h"
#include "services/common/status/status_matchers.h"
#include "services/common/tracing/otlp_json.h"
#include "services/common/tracing/tracer.h"
#include "tests/fakes/fake_provider/fake_provider.h"
#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::FakeApi;
using ::tiermesh::testing::FakeAttempt;
using ::tiermesh::testing::FakeModelScript;
using ::tiermesh::testing::FakeProvider;

constexpr char kOperatorKey[] = "operator-key-7f3a9c2e51";
constexpr char kCanary[] = "CANARY-byok-5d1e8b7a0c";

struct Api {
  const char* name;
  ProviderKind kind;
};

std::string Trailer(const grpc::ClientContext& context, const std::string& key) {
  const auto& md = context.GetServerTrailingMetadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

class Harness {
 public:
  // One provider of `kind` named `name` with model "m" -> upstream "fake-model".
  void Start(ProviderKind kind, const std::string& name, const std::string& provider_extra = "",
             std::map<std::string, std::string> env = {{"OP_KEY", kOperatorKey}}) {
    ASSERT_OK_AND_ASSIGN(fake_, FakeProvider::Start());
    fake_->SetAcceptedKeys({kOperatorKey, kCanary});
    ASSERT_OK_AND_ASSIGN(transport_, tiermesh::http::NewLoopbackHttpTransport());
    const std::string base =
        kind == ProviderKind::kOpenAiCompatible ? fake_->openai_base_url() : fake_->base_url();
    const std::string yaml =
        absl::StrCat("providers:\n  - name: ", name, "\n    type: ", ProviderKindName(kind),
                     "\n    base_url: ", base, "\n    api_key: ${OP_KEY}\n    idle_timeout: 2s\n",
                     provider_extra,
                     "    models:\n      - name: m\n        upstream: fake-model\n"
                     "        price: {input_usd_per_mtok: 3, output_usd_per_mtok: 15}\n");
    ASSERT_OK_AND_ASSIGN(CloudConfig config, ParseCloudConfig(yaml));
    Init(config, std::move(env));
  }

  void Init(const CloudConfig& config, std::map<std::string, std::string> env) {
    price_ = config.providers.empty() ? Price{} : config.providers[0].models[0].price;
    registry_ = std::make_shared<prometheus::Registry>();
    log_sink_ = std::make_shared<tiermesh::logging::MemorySink>();
    tiermesh::logging::LoggerOptions log_options;
    log_options.service = "cloud-proxy";
    log_options.sink = log_sink_;
    spans_ = std::make_shared<tiermesh::tracing::testing::CapturingProcessor>();
    tiermesh::tracing::TracerOptions tracer_options;
    tracer_options.processor = spans_;
    tracer_ = tiermesh::tracing::Tracer(tracer_options);
    CloudServiceOptions options;
    options.transport = transport_.get();
    options.metrics_registry = registry_.get();
    options.tracer = tracer_;
    options.logger = tiermesh::logging::Logger(log_options);
    auto env_fn = [env](absl::string_view var) -> absl::optional<std::string> {
      auto it = env.find(std::string(var));
      if (it == env.end()) return absl::nullopt;
      return it->second;
    };
    ASSERT_OK_AND_ASSIGN(service_, CloudInferenceService::Create(config, env_fn, nullptr, options));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    // Server spans as in the binary (RunServer installs the same interceptor).
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(tiermesh::server::NewTracingInterceptorFactory(tracer_, nullptr));
    builder.experimental().SetInterceptorCreators(std::move(creators));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = tiermesh::v1::InferenceService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  ~Harness() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  static tiermesh::v1::GenerateRequest Hello(const std::string& model = "m") {
    tiermesh::v1::GenerateRequest req;
    req.set_model(model);
    req.set_request_id("req-1");
    auto* m = req.add_messages();
    m->set_role(tiermesh::v1::ROLE_USER);
    m->set_content("Say hello");
    return req;
  }

  struct StreamOutcome {
    std::string text;
    std::vector<tiermesh::v1::StreamSummary> summaries;
    grpc::Status status;
    std::string reason;
  };

  StreamOutcome Stream(const tiermesh::v1::GenerateRequest& req, const std::string& byok = "") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!byok.empty()) context.AddMetadata(kProviderKeyMetadata, byok);
    tiermesh::v1::GenerateStreamRequest sreq;
    *sreq.mutable_request() = req;
    auto reader = stub_->GenerateStream(&context, sreq);
    StreamOutcome out;
    tiermesh::v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_delta()) out.text += msg.delta().content();
      if (msg.has_summary()) out.summaries.push_back(msg.summary());
    }
    out.status = reader->Finish();
    out.reason = Trailer(context, "x-tiermesh-error-reason");
    return out;
  }

  std::string MetricsText() { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

  double MetricValue(const std::string& series) {
    const std::string text = MetricsText();
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, series + " ")) {
        double v = 0;
        if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
      }
    }
    return -1;
  }

  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<tiermesh::http::HttpTransport> transport_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<tiermesh::logging::MemorySink> log_sink_;
  std::shared_ptr<tiermesh::tracing::testing::CapturingProcessor> spans_;
  tiermesh::tracing::Tracer tracer_ = tiermesh::tracing::Tracer::Noop();
  std::unique_ptr<CloudInferenceService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<tiermesh::v1::InferenceService::Stub> stub_;
  Price price_;
};

FakeModelScript Reply(std::string text) {
  FakeModelScript s;
  s.reply = std::move(text);
  return s;
}

int64_t LedgerCost(const FakeAttempt& a, const Price& price) {
  tiermesh::v1::Usage u;
  u.set_prompt_tokens(a.prompt_tokens);
  u.set_completion_tokens(a.completion_tokens);
  return ComputeCost(u, price, false).value().nano_usd();
}

class ServiceTest : public ::testing::TestWithParam<Api> {
 protected:
  void SetUp() override { h_.Start(GetParam().kind, GetParam().name); }
  Harness h_;
};

TEST_P(ServiceTest, UnaryUsageAndCostMatchTheLedger) {
  h_.fake_->SetModel("fake-model", Reply("Hello there, world"));
  grpc::ClientContext context;
  tiermesh::v1::GenerateResponse r;
  ASSERT_TRUE(h_.stub_->Generate(&context, Harness::Hello(), &r).ok());
  EXPECT_EQ(r.message().content(), "Hello there, world");
  ASSERT_TRUE(h_.fake_->WaitForAttempts(1, absl::Seconds(5)));
  const FakeAttempt a = h_.fake_->attempts()[0];
  EXPECT_EQ(a.api_key, kOperatorKey);
  EXPECT_EQ(r.usage().prompt_tokens(), a.prompt_tokens);
  EXPECT_EQ(r.usage().completion_tokens(), a.completion_tokens);
  EXPECT_FALSE(r.usage().estimated());
  EXPECT_EQ(r.cost().nano_usd(), LedgerCost(a, h_.price_));
  EXPECT_FALSE(r.cost().byok());
  EXPECT_GT(r.timings().total().nanos() + r.timings().total().seconds(), 0);
  const std::string labels = absl::StrCat("{model=\"m\",provider=\"", GetParam().name, "\"}");
  EXPECT_DOUBLE_EQ(h_.MetricValue("tiermesh_cloud_cost_usd_total" + labels), r.cost().usd());
  EXPECT_EQ(h_.MetricValue(
                absl::StrCat("tiermesh_cloud_requests_total{code=\"OK\",model=\"m\",provider=\"",
                             GetParam().name, "\"}")),
            1);
}

TEST_P(ServiceTest, StreamEndsWithACompleteSummary) {
  h_.fake_->SetModel("fake-model", Reply("One two three four"));
  Harness::StreamOutcome s = h_.Stream(Harness::Hello());
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.text, "One two three four");
  ASSERT_EQ(s.summaries.size(), 1u);
  const tiermesh::v1::StreamSummary& sum = s.summaries[0];
  EXPECT_TRUE(sum.complete());
  EXPECT_EQ(sum.finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  ASSERT_TRUE(h_.fake_->WaitForAttempts(1, absl::Seconds(5)));
  const FakeAttempt a = h_.fake_->attempts()[0];
  EXPECT_EQ(sum.usage().prompt_tokens(), a.prompt_tokens);
  EXPECT_EQ(sum.usage().completion_tokens(), a.completion_tokens);
  EXPECT_EQ(sum.cost().nano_usd(), LedgerCost(a, h_.price_));
  EXPECT_EQ(sum.model(), "fake-model");
}

TEST_P(ServiceTest, CutStreamEndsNonOkWithPartialUsage) {
  FakeModelScript script = Reply("alpha beta gamma delta");
  script.cut_after_tokens = 2;
  h_.fake_->SetModel("fake-model", script);
  Harness::StreamOutcome s = h_.Stream(Harness::Hello());
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::UNAVAILABLE) << s.status.error_message();
  EXPECT_EQ(s.text, "alpha beta");
  ASSERT_EQ(s.summaries.size(), 1u);
  EXPECT_FALSE(s.summaries[0].complete());
  EXPECT_GE(s.summaries[0].usage().completion_tokens(), 2);
  EXPECT_FALSE(s.summaries[0].error().empty());
  EXPECT_FALSE(s.reason.empty());
}

TEST_P(ServiceTest, RateLimitFromTheProviderKeepsRetryAfterAndReason) {
  FakeModelScript limited;
  limited.status = 429;
  limited.retry_after_seconds = 7;
  h_.fake_->SetModel("fake-model", limited);
  grpc::ClientContext context;
  tiermesh::v1::GenerateResponse r;
  grpc::Status status = h_.stub_->Generate(&context, Harness::Hello(), &r);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Trailer(context, "retry-after-ms"), "7000");
  EXPECT_FALSE(Trailer(context, "x-tiermesh-error-reason").empty());
  Harness::StreamOutcome s = h_.Stream(Harness::Hello());
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(s.summaries.empty());  // before any delta: no summary
}

INSTANTIATE_TEST_SUITE_P(Apis, ServiceTest,
                         ::testing::Values(Api{"openai", ProviderKind::kOpenAiCompatible},
                                           Api{"anthropic", ProviderKind::kAnthropic},
                                           Api{"gemini", ProviderKind::kGemini}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(CloudService, ClientSideLimitRejectsWithoutAnUpstreamCall) {
  Harness h;
  h.Start(ProviderKind::kOpenAiCompatible, "openai", "    limits: {requests_per_minute: 1}\n");
  h.fake_->SetModel("fake-model", Reply("ok"));
  grpc::ClientContext first;
  tiermesh::v1::GenerateResponse r;
  ASSERT_TRUE(h.stub_->Generate(&first, Harness::Hello(), &r).ok());
  grpc::ClientContext second;
  grpc::Status status = h.stub_->Generate(&second, Harness::Hello(), &r);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Trailer(second, "x-tiermesh-error-reason"), "client_rate_limited");
  int64_t ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Trailer(second, "retry-after-ms"), &ms));
  EXPECT_GT(ms, 50'000);
  EXPECT_LE(ms, 60'000);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(h.fake_->attempts().size(), 1u);  // the second call never left the proxy
  EXPECT_EQ(h.MetricValue("tiermesh_cloud_rate_limited_total{provider=\"openai\"}"), 1);
}

TEST(CloudService, OfflineWithoutKeysOrProviders) {
  Harness h;
  h.Start(ProviderKind::kAnthropic, "anthropic", "", /*env=*/{});
  grpc::ClientContext lc;
  tiermesh::v1::ListModelsResponse models;
  ASSERT_TRUE(h.stub_->ListModels(&lc, {}, &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).state(), tiermesh::v1::MODEL_STATE_UNAVAILABLE);
  EXPECT_THAT(models.models(0).unavailable_reason(), HasSubstr("OP_KEY"));
  EXPECT_EQ(models.models(0).provider(), "anthropic");
  EXPECT_DOUBLE_EQ(models.models(0).price().input_usd_per_mtok(), 3.0);
  grpc::ClientContext gl;
  tiermesh::v1::GetLoadResponse load;
  ASSERT_TRUE(h.stub_->GetLoad(&gl, {}, &load).ok());
  EXPECT_FALSE(load.ready());
  ASSERT_EQ(load.models_size(), 1);
  EXPECT_FALSE(load.models(0).accepting());
  grpc::ClientContext gc;
  tiermesh::v1::GenerateResponse r;
  grpc::Status status = h.stub_->Generate(&gc, Harness::Hello(), &r);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("OP_KEY"));
  grpc::ClientContext unknown;
  status = h.stub_->Generate(&unknown, Harness::Hello("nope"), &r);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(h.fake_->attempts().empty());

  Harness empty;
  ASSERT_OK_AND_ASSIGN(empty.transport_, tiermesh::http::NewCurlHttpTransport({}));
  empty.Init(CloudConfig{}, {});
  grpc::ClientContext ec;
  status = empty.stub_->Generate(&ec, Harness::Hello(), &r);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("offline"));
}

TEST(CloudService, ByokCanaryKeyIsUsedAndAppearsNowhere) {
  Harness h;
  h.Start(ProviderKind::kOpenAiCompatible, "openai", "", /*env=*/{});  // no operator key
  h.fake_->SetModel("fake-model", Reply("private answer"));
  grpc::ClientContext context;
  context.AddMetadata(kProviderKeyMetadata, kCanary);
  tiermesh::v1::GenerateResponse r;
  ASSERT_TRUE(h.stub_->Generate(&context, Harness::Hello(), &r).ok());
  EXPECT_TRUE(r.cost().byok());
  EXPECT_GT(r.cost().nano_usd(), 0);
  Harness::StreamOutcome s = h.Stream(Harness::Hello(), kCanary);
  ASSERT_TRUE(s.status.ok());
  ASSERT_TRUE(h.fake_->WaitForAttempts(2, absl::Seconds(5)));
  for (const FakeAttempt& a : h.fake_->attempts()) EXPECT_EQ(a.api_key, kCanary);
  // Operator spend untouched; BYOK counted apart.
  EXPECT_EQ(h.MetricValue("tiermesh_cloud_cost_usd_total{model=\"m\",provider=\"openai\"}"), -1);
  EXPECT_GT(h.MetricValue("tiermesh_cloud_byok_cost_usd_total{model=\"m\",provider=\"openai\"}"),
            0);

  // A refused BYOK key: the error does not echo it.
  h.fake_->SetAcceptedKeys({kOperatorKey});
  grpc::ClientContext refused;
  refused.AddMetadata(kProviderKeyMetadata, kCanary);
  grpc::Status status = h.stub_->Generate(&refused, Harness::Hello(), &r);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), Not(HasSubstr(kCanary)));
  Harness::StreamOutcome sr = h.Stream(Harness::Hello(), kCanary);
  EXPECT_EQ(sr.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(sr.status.error_message(), Not(HasSubstr(kCanary)));

  // No log line, metric or span holds the key.
  const std::vector<std::string> lines = h.log_sink_->Lines();
  EXPECT_GE(lines.size(), 4u);
  for (const std::string& line : lines) EXPECT_THAT(line, Not(HasSubstr(kCanary)));
  EXPECT_THAT(h.MetricsText(), Not(HasSubstr(kCanary)));
  // Four calls: four server spans and four upstream spans (a server span ends
  // just after its call returns, so wait for them, bounded).
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (h.spans_->Spans().size() < 8 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const std::vector<tiermesh::tracing::SpanData> spans = h.spans_->Spans();
  ASSERT_GE(spans.size(), 8u);
  int upstream_spans = 0;
  for (const tiermesh::tracing::SpanData& span : spans) {
    if (span.kind != tiermesh::tracing::SpanKind::kClient) continue;
    ++upstream_spans;
    // Each upstream span is the child of its call's server span.
    bool has_server_parent = false;
    for (const tiermesh::tracing::SpanData& parent : spans) {
      has_server_parent |= parent.kind == tiermesh::tracing::SpanKind::kServer &&
                           parent.context.span_id == span.parent_span_id &&
                           parent.context.trace_id == span.context.trace_id;
    }
    EXPECT_TRUE(has_server_parent) << span.name;
  }
  EXPECT_EQ(upstream_spans, 4);
  // Everything a span holds, as exported: names, attributes, events, statuses.
  EXPECT_THAT(tiermesh::tracing::EncodeOtlpJson(spans, {}), Not(HasSubstr(kCanary)));
}

TEST(CloudService, ClientCancellationClosesTheUpstreamQuickly) {
  Harness h;
  h.Start(ProviderKind::kAnthropic, "anthropic");
  FakeModelScript slow = Reply("a b c d e f g h i j k l m n o p q r s t u v w x y z");
  slow.tokens_per_second = 5;
  h.fake_->SetModel("fake-model", slow);
  grpc::ClientContext context;
  tiermesh::v1::GenerateStreamRequest sreq;
  *sreq.mutable_request() = Harness::Hello();
  auto reader = h.stub_->GenerateStream(&context, sreq);
  tiermesh::v1::GenerateStreamResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // the first delta
  context.TryCancel();
  const absl::Time cancelled = absl::Now();
  EXPECT_TRUE(h.fake_->http().WaitForClosedConnections(1, absl::Milliseconds(250)));
  EXPECT_LT(absl::Now() - cancelled, absl::Milliseconds(250));
  while (reader->Read(&msg)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(h.fake_->WaitForAttempts(1, absl::Seconds(2)));
  EXPECT_FALSE(h.fake_->attempts()[0].completed);
}

}  // namespace
}  // namespace tiermesh::cloud
