// The worker's gRPC services with an `external` model served by a fake llama-server (a
// loopback HTTP server scripted per request), for the error paths a real one rarely shows:
// "Loading model" (503), a malformed chunk or a reset connection after tokens were streamed.
// The gRPC stream must then end non-OK after a StreamSummary{complete: false} — never a
// clean-looking end.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

#include "services/common/http/http_client.h"
#include "services/common/server/server.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "services/worker/inference_service.h"
#include "services/worker/model_manager.h"
#include "tests/fakes/http_server/fake_http_server.h"
#include "tiermesh/v1/inference.grpc.pb.h"

namespace tiermesh::worker {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::FakeHttpRequest;
using ::tiermesh::testing::FakeHttpResponder;
using ::tiermesh::testing::FakeHttpServer;
using ::tiermesh::testing::StatusIs;
namespace v1 = tiermesh::v1;

constexpr char kSse[] = "text/event-stream";
constexpr char kSlots[] =
    R"([{"id":0,"n_ctx":4096,"is_processing":false},{"id":1,"n_ctx":4096,"is_processing":false}])";

std::string Chunk(const std::string& text) {
  return absl::StrCat(R"(data: {"choices":[{"index":0,"finish_reason":null,"delta":{"content":")",
                      text, R"("}}],"model":"m","object":"chat.completion.chunk"})", "\n\n");
}

class WorkerExternalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FakeHttpServer>> server = FakeHttpServer::Start(
        [this](const FakeHttpRequest& request, FakeHttpResponder& r) { Handle(request, r); });
    ASSERT_TRUE(server.ok()) << server.status();
    fake_ = *std::move(server);
    absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport =
        http::NewLoopbackHttpTransport();
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);

    WorkerConfig config;
    ModelConfig model;
    model.name = "side";
    model.managed = false;
    model.external_config.url = fake_->base_url();
    model.context_window = 4096;
    config.models = {model};
    config.default_model = "side";
    config.scrape_interval = absl::Milliseconds(50);
    ModelManagerOptions manager_options;
    manager_options.transport = transport_.get();
    absl::StatusOr<std::unique_ptr<ModelManager>> manager =
        ModelManager::Create(config, manager_options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    service_ = std::make_unique<WorkerInferenceService>(manager_.get(), nullptr,
                                                        WorkerServiceOptions{});
    server::ServerOptions server_options;
    server_options.service_name = "worker";
    server_options.grpc_address = "127.0.0.1:0";
    server::ServerComponents parts;
    parts.services = {service_.get()};
    absl::StatusOr<std::unique_ptr<server::RunningServer>> running =
        server::RunningServer::Start(server_options, parts);
    ASSERT_TRUE(running.ok()) << running.status();
    server_ = *std::move(running);
    manager_->Start();
    stub_ = v1::InferenceService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (manager_ != nullptr) manager_->Shutdown();
    if (fake_ != nullptr) fake_->Stop();
  }

  void Handle(const FakeHttpRequest& request, FakeHttpResponder& r) {
    if (request.path == "/health") {
      if (loading_) {
        r.Respond(503, R"({"error":{"code":503,"message":"Loading model","type":"unavailable_error"}})");
      } else {
        r.Respond(200, R"({"status":"ok"})");
      }
      return;
    }
    if (request.path == "/slots") {
      r.Respond(200, kSlots);
      return;
    }
    if (request.path == "/metrics") {
      r.Respond(200, "llamacpp:requests_processing 0\nllamacpp:requests_deferred 0\n");
      return;
    }
    r.StartChunked(200, {{"Content-Type", kSse}});
    r.Write(Chunk("par"));
    r.Write(Chunk("tial"));
    if (absl::StrContains(request.body, "malformed")) {
      r.Write("data: {not json}\n\n");
      r.Write("data: [DONE]\n\n");
    } else {
      r.Sleep(absl::Milliseconds(20));
      r.ResetConnection();
    }
  }

  bool WaitReady(bool ready) {
    for (int i = 0; i < 200; ++i) {
      if (manager_->DefaultReady() == ready) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  struct StreamResult {
    absl::Status status;
    std::string content;
    bool has_summary = false;
    v1::StreamSummary summary;
  };
  StreamResult Stream(const std::string& text) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::GenerateStreamRequest request;
    v1::ChatMessage* m = request.mutable_request()->add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(text);
    auto reader = stub_->GenerateStream(&context, request);
    StreamResult result;
    v1::GenerateStreamResponse message;
    while (reader->Read(&message)) {
      if (message.has_delta()) result.content += message.delta().content();
      if (message.has_summary()) {
        result.has_summary = true;
        result.summary = message.summary();
      }
    }
    result.status = FromGrpcStatus(reader->Finish());
    return result;
  }

  std::atomic<bool> loading_{false};
  std::unique_ptr<FakeHttpServer> fake_;
  std::unique_ptr<http::HttpTransport> transport_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<WorkerInferenceService> service_;
  std::unique_ptr<server::RunningServer> server_;
  std::unique_ptr<v1::InferenceService::Stub> stub_;
};

TEST_F(WorkerExternalTest, BrokenStreamsEndNonOkWithAnIncompleteSummary) {
  ASSERT_TRUE(WaitReady(true));
  for (const char* prompt : {"malformed please", "reset please"}) {
    StreamResult r = Stream(prompt);
    EXPECT_FALSE(r.status.ok()) << prompt;
    EXPECT_EQ(r.content, "partial") << prompt;  // what came before the failure was delivered
    ASSERT_TRUE(r.has_summary) << prompt;
    EXPECT_FALSE(r.summary.complete()) << prompt;
    EXPECT_EQ(r.summary.finish_reason(), v1::FINISH_REASON_ERROR) << prompt;
    EXPECT_FALSE(r.summary.error().empty()) << prompt;
  }
}

TEST_F(WorkerExternalTest, LoadWaitsForAnExternalServerThatIsStillLoading) {
  ASSERT_TRUE(WaitReady(true));
  loading_ = true;
  ASSERT_TRUE(WaitReady(false));
  EXPECT_THAT(manager_->Load("side", /*wait=*/false, absl::Now()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("503")));
  EXPECT_THAT(manager_->Load("side", /*wait=*/true, absl::Now() + absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("503")));
  std::thread ready_soon([this] {
    absl::SleepFor(absl::Milliseconds(150));
    loading_ = false;
  });
  EXPECT_OK(manager_->Load("side", /*wait=*/true, absl::Now() + absl::Seconds(10)));
  ready_soon.join();
}

TEST_F(WorkerExternalTest, LoadingServerIsUnavailableAtOnce) {
  ASSERT_TRUE(WaitReady(true));
  loading_ = true;
  ASSERT_TRUE(WaitReady(false));
  const absl::Time start = absl::Now();
  StreamResult r = Stream("hello");
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("503")));
  EXPECT_FALSE(r.has_summary);  // nothing was streamed: the router may fall back invisibly
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  loading_ = false;
  EXPECT_TRUE(WaitReady(true));
}

}  // namespace
}  // namespace tiermesh::worker
