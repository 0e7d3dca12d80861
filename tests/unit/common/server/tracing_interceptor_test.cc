#include "services/common/server/tracing_interceptor.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

#include "services/common/logging/logger.h"
#include "services/common/server/server.h"
#include "services/common/status/status_matchers.h"
#include "services/common/tracing/propagation.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/tracer.h"
#include "tests/unit/common/tracing/tracing_fakes.h"
#include "tiermesh/v1/classifier.grpc.pb.h"

namespace tiermesh::server {
namespace {

using ::tiermesh::tracing::SpanData;
using ::tiermesh::tracing::testing::CapturingProcessor;

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kCallerSpan[] = "00f067aa0ba902b7";

// Records what a handler sees of tracing, and tags its server span.
class TracedClassifier final : public tiermesh::v1::ClassifierService::Service {
 public:
  explicit TracedClassifier(std::shared_ptr<ServerSpans> spans) : spans_(std::move(spans)) {}

  grpc::Status Classify(grpc::ServerContext* context, const tiermesh::v1::ClassifyRequest* request,
                        tiermesh::v1::ClassifyResponse* response) override {
    absl::MutexLock lock(&mu_);
    seen_parent_ = tracing::ExtractGrpc(*context).value_or(tracing::SpanContext());
    tracing::Span* span = spans_->Find(context);
    found_span_ = span != nullptr;
    if (span != nullptr) span->SetAttribute("test.handler", "yes");
    if (request->text() == "fail") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model");
    return grpc::Status::OK;
  }

  tracing::SpanContext seen_parent() {
    absl::MutexLock lock(&mu_);
    return seen_parent_;
  }
  bool found_span() {
    absl::MutexLock lock(&mu_);
    return found_span_;
  }

 private:
  std::shared_ptr<ServerSpans> spans_;
  absl::Mutex mu_;
  tracing::SpanContext seen_parent_ ABSL_GUARDED_BY(mu_);
  bool found_span_ ABSL_GUARDED_BY(mu_) = false;
};

std::optional<tracing::AttributeValue> Attribute(const SpanData& span, const std::string& key) {
  for (const auto& [k, v] : span.attributes) {
    if (k == key) return v;
  }
  return std::nullopt;
}

class TracingInterceptorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tracing::TracerOptions tracer_options;
    tracer_options.processor = processor_;
    tracer_options.id_generator = std::make_shared<tracing::testing::SequentialIdGenerator>();
    tracer_ = tracing::Tracer(std::move(tracer_options));
    ServerOptions options;
    options.service_name = "test";
    options.grpc_address = "127.0.0.1:0";
    options.logger = logging::Logger::Discard();
    ServerComponents components;
    components.services = {&service_};
    components.tracer = tracer_;
    components.server_spans = spans_;
    ASSERT_OK_AND_ASSIGN(server_, RunningServer::Start(options, components));
    stub_ = tiermesh::v1::ClassifierService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Classify(const std::string& text, const std::string& traceparent) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!traceparent.empty()) context.AddMetadata("traceparent", traceparent);
    tiermesh::v1::ClassifyRequest request;
    request.set_text(text);
    tiermesh::v1::ClassifyResponse response;
    return stub_->Classify(&context, request, &response);
  }

  // The span ends when gRPC releases the call, just after the client got its
  // answer: wait (bounded) for it.
  std::vector<SpanData> AwaitSpans(size_t n) {
    std::vector<SpanData> spans;
    for (int i = 0; i < 400; ++i) {
      spans = processor_->Spans();
      if (spans.size() >= n) break;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return spans;
  }

  std::shared_ptr<CapturingProcessor> processor_ = std::make_shared<CapturingProcessor>();
  tracing::Tracer tracer_ = tracing::Tracer::Noop();
  std::shared_ptr<ServerSpans> spans_ = std::make_shared<ServerSpans>();
  TracedClassifier service_{spans_};
  std::unique_ptr<RunningServer> server_;
  std::unique_ptr<tiermesh::v1::ClassifierService::Stub> stub_;
};

TEST_F(TracingInterceptorTest, ServerSpanContinuesTheCallersTrace) {
  const std::string traceparent = std::string("00-") + kTrace + "-" + kCallerSpan + "-01";
  ASSERT_TRUE(Classify("ok", traceparent).ok());
  std::vector<SpanData> spans = AwaitSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  const SpanData& span = spans[0];
  EXPECT_EQ(span.name, "tiermesh.v1.ClassifierService/Classify");
  EXPECT_EQ(span.kind, tracing::SpanKind::kServer);
  EXPECT_EQ(span.context.trace_id.ToHex(), kTrace);
  EXPECT_EQ(span.parent_span_id.ToHex(), kCallerSpan);
  EXPECT_EQ(span.status_code, tracing::SpanStatusCode::kOk);
  EXPECT_EQ(Attribute(span, "rpc.system"), tracing::AttributeValue("grpc"));
  EXPECT_EQ(Attribute(span, "rpc.service"),
            tracing::AttributeValue("tiermesh.v1.ClassifierService"));
  EXPECT_EQ(Attribute(span, "rpc.method"), tracing::AttributeValue("Classify"));
  EXPECT_EQ(Attribute(span, "rpc.grpc.status_code"), tracing::AttributeValue(0));
  EXPECT_EQ(Attribute(span, "test.handler"), tracing::AttributeValue("yes"));

  // The handler's view of "the caller" is the server span, so its own spans
  // become children of it.
  EXPECT_TRUE(service_.found_span());
  EXPECT_EQ(service_.seen_parent().trace_id.ToHex(), kTrace);
  EXPECT_EQ(service_.seen_parent().span_id, span.context.span_id);
}

TEST_F(TracingInterceptorTest, ErrorsMarkTheSpanAndNoParentStartsANewTrace) {
  EXPECT_EQ(Classify("fail", "").error_code(), grpc::StatusCode::NOT_FOUND);
  std::vector<SpanData> spans = AwaitSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].status_code, tracing::SpanStatusCode::kError);
  EXPECT_THAT(spans[0].status_message, ::testing::HasSubstr("no model"));
  EXPECT_EQ(Attribute(spans[0], "rpc.grpc.status_code"), tracing::AttributeValue(5));
  EXPECT_FALSE(spans[0].parent_span_id.IsValid());
  EXPECT_TRUE(spans[0].context.trace_id.IsValid());
}

TEST_F(TracingInterceptorTest, SpanLookupEndsWithTheCall) {
  ASSERT_TRUE(Classify("ok", "").ok());
  AwaitSpans(1);
  EXPECT_TRUE(service_.found_span());  // it was there during the call
  EXPECT_EQ(spans_->size(), 0u);       // and is gone with it
}

TEST(TracingInterceptor, DisabledTracerInterceptsNothing) {
  auto factory = NewTracingInterceptorFactory(tracing::Tracer::Noop(), nullptr);
  ASSERT_NE(factory, nullptr);
  EXPECT_EQ(factory->CreateServerInterceptor(nullptr), nullptr);
}

}  // namespace
}  // namespace tiermesh::server

namespace tiermesh::server {
namespace {

TEST(StartsRootTrace, HousekeepingCallsDoNotStartTraces) {
  struct Case {
    const char* method;
    bool root;
  };
  const Case cases[] = {
      {"/tiermesh.v1.RouterService/Chat", true},
      {"/tiermesh.v1.InferenceService/Generate", true},
      {"/tiermesh.v1.InferenceService/GenerateStream", true},
      {"/tiermesh.v1.ClassifierService/Classify", true},
      {"/tiermesh.v1.InferenceService/GetLoad", false},
      {"/grpc.health.v1.Health/Check", false},
      {"/grpc.health.v1.Health/Watch", false},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", false},
  };
  for (const Case& c : cases) EXPECT_EQ(StartsRootTrace(c.method), c.root) << c.method;
}

}  // namespace
}  // namespace tiermesh::server
