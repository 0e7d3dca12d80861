#include "services/common/metrics/grpc_server_metrics.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

#include "services/common/metrics/metrics_server.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/common/metrics/grpc_test_services.h"
#include "tests/unit/common/metrics/scrape_util.h"
#include "tiermesh/v1/classifier.grpc.pb.h"
#include "tiermesh/v1/inference.grpc.pb.h"

namespace tiermesh::metrics {
namespace {

using ::tiermesh::testing::CallbackClassifier;
using ::tiermesh::testing::CallbackInference;
using ::tiermesh::testing::Gate;
using ::tiermesh::testing::SampleValue;
using ::tiermesh::testing::ScrapeMetrics;
using ::tiermesh::testing::SyncClassifier;
using ::tiermesh::testing::SyncInference;

constexpr char kClassify[] = "/tiermesh.v1.ClassifierService/Classify";
constexpr char kGenerateStream[] = "/tiermesh.v1.InferenceService/GenerateStream";

TEST(IsFullMethodName, Table) {
  struct Case {
    const char* method;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"/tiermesh.v1.RouterService/Chat", true},
      {"/grpc.health.v1.Health/Check", true},
      {"/Svc/M", true},
      {"", false},
      {"unknown", false},
      {"/", false},
      {"/Svc", false},
      {"/Svc/", false},
      {"//M", false},
      {"/a/b/c", false},
      {"/a b/c", false},
      {"/svc/m\n", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsFullMethodName(c.method), c.ok) << "method: '" << c.method << "'";
  }
}

TEST(IsCompiledInMethod, Table) {
  struct Case {
    const char* method;
    bool known;
  };
  const std::vector<Case> cases = {
      {"/tiermesh.v1.ClassifierService/Classify", true},
      {"/tiermesh.v1.InferenceService/GenerateStream", true},
      {"/grpc.health.v1.Health/Check", true},
      {"/grpc.health.v1.Health/Watch", true},
      {"/tiermesh.v1.ClassifierService/Nope", false},
      {"/tiermesh.v1.NoSuchService/Classify", false},
      {"/x.Y/Z", false},
      {"unknown", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(IsCompiledInMethod(c.method), c.known) << "method: '" << c.method << "'";
  }
}

TEST(GrpcServerMetrics, NeedsARegistry) { EXPECT_FALSE(GrpcServerMetrics::Create(nullptr).ok()); }

TEST(GrpcServerMetrics, MethodChildrenAreCachedAndBounded) {
  auto registry = std::make_shared<prometheus::Registry>();
  ASSERT_OK_AND_ASSIGN(
      std::shared_ptr<GrpcServerMetrics> metrics,
      GrpcServerMetrics::Create(registry, nullptr, [](absl::string_view) { return true; }));
  GrpcServerMetrics::MethodMetrics& a = metrics->ForMethod(kClassify);
  EXPECT_EQ(&a, &metrics->ForMethod(kClassify));
  EXPECT_EQ(&metrics->Requests(a, grpc::StatusCode::OK),
            &metrics->Requests(a, grpc::StatusCode::OK));
  EXPECT_EQ(metrics->ForMethod("not a method").method, kOtherMethod);
  for (size_t i = 0; i < GrpcServerMetrics::kMaxMethods + 10; ++i) {
    metrics->ForMethod("/pkg.Svc/M" + std::to_string(i));
  }
  EXPECT_EQ(metrics->ForMethod("/pkg.Svc/OneTooMany").method, kOtherMethod);
  EXPECT_EQ(metrics->ForMethod(kClassify).method, kClassify);  // known ones stay
}

// A clock the test moves by hand, so durations are exact.
class ManualClock {
 public:
  MonotonicClock AsFunction() {
    return [this] {
      return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns_.load()));
    };
  }
  void Advance(std::chrono::nanoseconds by) { now_ns_ += by.count(); }

 private:
  std::atomic<int64_t> now_ns_{1'000'000'000};
};

enum class Api { kSync, kCallback };

// A gRPC server (port 0) with the metrics interceptor, the test services in
// the sync or the callback flavour, and a /metrics endpoint (port 0).
class InterceptorTest : public ::testing::TestWithParam<Api> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(metrics_server_, MetricsServer::Start("127.0.0.1:0"));
    ASSERT_OK_AND_ASSIGN(
        std::shared_ptr<GrpcServerMetrics> server_metrics,
        GrpcServerMetrics::Create(metrics_server_->shared_registry(), clock_.AsFunction()));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    if (GetParam() == Api::kSync) {
      builder.RegisterService(&sync_classifier_);
      builder.RegisterService(&sync_inference_);
    } else {
      builder.RegisterService(&callback_classifier_);
      builder.RegisterService(&callback_inference_);
    }
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
    factories.push_back(NewServerMetricsInterceptorFactory(server_metrics));
    builder.experimental().SetInterceptorCreators(std::move(factories));
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    classifier_ = tiermesh::v1::ClassifierService::NewStub(channel_);
    inference_ = tiermesh::v1::InferenceService::NewStub(channel_);
  }

  void TearDown() override {
    gate_.Open();
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  grpc::Status Classify(const std::string& text, grpc::ClientContext* context = nullptr) {
    grpc::ClientContext local;
    if (context == nullptr) context = &local;
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    tiermesh::v1::ClassifyRequest request;
    request.set_text(text);
    tiermesh::v1::ClassifyResponse response;
    return classifier_->Classify(context, request, &response);
  }

  // Returns the final status; `chunks` counts the messages read.
  grpc::Status Stream(const std::string& model, int* chunks) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    tiermesh::v1::GenerateStreamRequest request;
    request.mutable_request()->set_model(model);
    auto reader = inference_->GenerateStream(&context, request);
    tiermesh::v1::GenerateStreamResponse response;
    *chunks = 0;
    while (reader->Read(&response)) ++*chunks;
    return reader->Finish();
  }

  std::string Scrape() {
    absl::StatusOr<std::string> text = ScrapeMetrics(metrics_server_->port());
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }

  std::optional<double> Requests(const std::string& text, const std::string& method,
                                 const std::string& code) {
    return SampleValue(text, std::string(kGrpcRequestsTotal), {{"method", method}, {"code", code}});
  }
  std::optional<double> InFlight(const std::string& text, const std::string& method) {
    return SampleValue(text, std::string(kGrpcInFlight), {{"method", method}});
  }
  std::optional<double> DurationCount(const std::string& text, const std::string& method) {
    return SampleValue(text, std::string(kGrpcRequestDuration) + "_count", {{"method", method}});
  }

  // The server records a call when it sends the status, which may be just
  // after the client saw it; scrape until `done` holds (bounded).
  std::string ScrapeUntil(const std::function<bool(const std::string&)>& done) {
    std::string text;
    for (int i = 0; i < 400; ++i) {
      text = Scrape();
      if (done(text)) break;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return text;
  }

  ManualClock clock_;
  Gate gate_;
  SyncClassifier sync_classifier_{&gate_};
  SyncInference sync_inference_{&gate_};
  CallbackClassifier callback_classifier_{&gate_};
  CallbackInference callback_inference_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tiermesh::v1::ClassifierService::Stub> classifier_;
  std::unique_ptr<tiermesh::v1::InferenceService::Stub> inference_;
};

TEST_P(InterceptorTest, UnaryCallsAreCountedByCode) {
  EXPECT_TRUE(Classify("ok").ok());
  EXPECT_TRUE(Classify("ok").ok());
  EXPECT_EQ(Classify("fail").error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const std::string text =
      ScrapeUntil([&](const std::string& t) { return DurationCount(t, kClassify) == 3; });
  EXPECT_EQ(Requests(text, kClassify, "OK"), 2);
  EXPECT_EQ(Requests(text, kClassify, "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(Requests(text, kClassify, "UNAVAILABLE"), std::nullopt);  // created lazily
  EXPECT_EQ(DurationCount(text, kClassify), 3);
  EXPECT_EQ(InFlight(text, kClassify), 0);
}

TEST_P(InterceptorTest, ServerStreamsAreCountedOnceWithTheirFinalCode) {
  int chunks = 0;
  EXPECT_TRUE(Stream("ok", &chunks).ok());
  EXPECT_EQ(chunks, 3);
  EXPECT_EQ(Stream("fail", &chunks).error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(chunks, 1);

  const std::string text =
      ScrapeUntil([&](const std::string& t) { return DurationCount(t, kGenerateStream) == 2; });
  EXPECT_EQ(Requests(text, kGenerateStream, "OK"), 1);
  EXPECT_EQ(Requests(text, kGenerateStream, "ABORTED"), 1);
  EXPECT_EQ(InFlight(text, kGenerateStream), 0);
}

TEST_P(InterceptorTest, InFlightWhileACallRunsThenZeroAndExactDuration) {
  absl::Notification done;
  grpc::Status blocked_status;
  std::thread caller([&] {
    blocked_status = Classify("block");
    done.Notify();
  });
  gate_.AwaitWaiters(1);
  EXPECT_EQ(InFlight(Scrape(), kClassify), 1);

  clock_.Advance(std::chrono::seconds(7));
  gate_.Open();
  done.WaitForNotification();
  caller.join();
  EXPECT_TRUE(blocked_status.ok()) << blocked_status.error_message();

  const std::string text = ScrapeUntil([&](const std::string& t) {
    return InFlight(t, kClassify) == 0 && DurationCount(t, kClassify) == 1;
  });
  EXPECT_EQ(InFlight(text, kClassify), 0);
  EXPECT_EQ(Requests(text, kClassify, "OK"), 1);
  const std::string bucket = std::string(kGrpcRequestDuration) + "_bucket";
  EXPECT_EQ(SampleValue(text, std::string(kGrpcRequestDuration) + "_sum", {{"method", kClassify}}),
            7);
  EXPECT_EQ(SampleValue(text, bucket, {{"method", kClassify}, {"le", "5"}}), 0);
  EXPECT_EQ(SampleValue(text, bucket, {{"method", kClassify}, {"le", "10"}}), 1);
  EXPECT_EQ(SampleValue(text, bucket, {{"method", kClassify}, {"le", "120"}}), 1);
}

TEST_P(InterceptorTest, CancelledCallLeavesNothingInFlight) {
  grpc::ClientContext context;
  grpc::Status status;
  std::thread caller([&] { status = Classify("block", &context); });
  gate_.AwaitWaiters(1);
  context.TryCancel();
  caller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);

  const std::string text = ScrapeUntil([&](const std::string& t) {
    return InFlight(t, kClassify) == 0 && DurationCount(t, kClassify) == 1;
  });
  EXPECT_EQ(InFlight(text, kClassify), 0);
  EXPECT_EQ(Requests(text, kClassify, "CANCELLED"), 1);
}

TEST_P(InterceptorTest, UnknownMethodsDoNotBecomeLabels) {
  grpc::GenericStub generic(channel_);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  grpc::Slice empty(std::string(""));
  grpc::ByteBuffer request(&empty, 1);  // a default ByteBuffer is "no message"
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  generic.UnaryCall(&context, "/tiermesh.v1.NoSuchService/Nope", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      status = std::move(s);
                      done.Notify();
                    });
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(Classify("ok").ok());
  // Both calls are recorded when the server sends their status, possibly just after the client
  // saw it: wait for both.
  const std::string text = ScrapeUntil([&](const std::string& t) {
    return DurationCount(t, kClassify) == 1 &&
           Requests(t, std::string(kOtherMethod), "UNIMPLEMENTED") == 1;
  });
  EXPECT_EQ(text.find("NoSuchService"), std::string::npos) << text;
  EXPECT_EQ(Requests(text, std::string(kOtherMethod), "UNIMPLEMENTED"), 1);
}

INSTANTIATE_TEST_SUITE_P(Apis, InterceptorTest, ::testing::Values(Api::kSync, Api::kCallback),
                         [](const ::testing::TestParamInfo<Api>& param_info) {
                           return param_info.param == Api::kSync ? "Sync" : "Callback";
                         });

}  // namespace
}  // namespace tiermesh::metrics
