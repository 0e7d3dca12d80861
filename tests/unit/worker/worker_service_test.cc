// The worker's gRPC services in-process, over the real llama-server and the generated test
// model (label "llama"; skipped when no llama-server binary is available): generation, tools,
// cancellation freeing the slot, deadlines while queued, saturation, crash and restart with
// health following, LRU residency with a drain, and model-file checks.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

#include "services/common/crypto/sha256.h"
#include "services/common/http/http_client.h"
#include "services/common/server/server.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "services/common/text/utf8.h"
#include "services/worker/config.h"
#include "services/worker/inference_service.h"
#include "services/worker/model_manager.h"
#include "services/worker/proto_convert.h"
#include "tests/unit/common/server/grpc_probe_util.h"
#include "tests/unit/worker/llama_server_harness.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tiermesh/v1/model.grpc.pb.h"

namespace tiermesh::worker {
namespace {

using ::testing::HasSubstr;
using tiermesh::testing::HealthOf;
using tiermesh::testing::HealthStatus;
using tiermesh::testing::StatusIs;
namespace v1 = tiermesh::v1;

std::string* g_binary = nullptr;
std::string* g_model_a = nullptr;
std::string* g_model_b = nullptr;
std::string* g_skip = nullptr;

class WorkerServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::string> binary = testing::FindLlamaServerBinary();
    if (!binary.ok()) {
      g_skip = new std::string(binary.status().ToString());
      return;
    }
    g_binary = new std::string(*binary);
    test_model::TestModelOptions a;
    a.n_ctx_train = 8192;
    absl::StatusOr<std::string> model_a = testing::WriteTestModel(::testing::TempDir(), a);
    ASSERT_TRUE(model_a.ok()) << model_a.status();
    test_model::TestModelOptions b = a;
    b.seed = a.seed + 1;
    absl::StatusOr<std::string> model_b = testing::WriteTestModel(::testing::TempDir(), b);
    ASSERT_TRUE(model_b.ok()) << model_b.status();
    g_model_a = new std::string(*model_a);
    g_model_b = new std::string(*model_b);
  }

  void SetUp() override {
    if (g_skip != nullptr) GTEST_SKIP() << *g_skip;
    absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport =
        http::NewLoopbackHttpTransport();
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (manager_ != nullptr) manager_->Shutdown();
    server_.reset();
    inference_.reset();
    models_.reset();
    manager_.reset();
  }

  static ModelConfig Managed(const std::string& name, const std::string& path, int parallel = 2,
                             int max_queue = 4) {
    ModelConfig m;
    m.name = name;
    m.managed = true;
    m.managed_config.binary = *g_binary;
    m.managed_config.model_path = path;
    m.managed_config.parallel = parallel;
    m.managed_config.ctx_size = parallel * 8192;
    m.managed_config.threads = 1;
    m.managed_config.load_timeout = absl::Seconds(60);
    m.max_queue = max_queue;
    m.context_window = 8192;
    return m;
  }

  static WorkerConfig Config(std::vector<ModelConfig> models) {
    WorkerConfig c;
    c.models = std::move(models);
    c.default_model = c.models.front().name;
    c.scrape_interval = absl::Milliseconds(200);
    c.restart_backoff_initial = absl::Milliseconds(800);
    c.restart_backoff_max = absl::Seconds(5);
    c.load_wait = absl::Seconds(60);
    c.drain_timeout = absl::Seconds(60);
    return c;
  }

  // Starts the manager and the gRPC server; SERVING once the default model is ready.
  void StartWorker(const WorkerConfig& config) {
    ModelManagerOptions options;
    options.transport = transport_.get();
    options.on_default_ready = [this](bool ready) {
      absl::MutexLock lock(&server_mu_);
      if (server_ != nullptr) server_->SetServing(ready);
    };
    absl::StatusOr<std::unique_ptr<ModelManager>> manager = ModelManager::Create(config, options);
    ASSERT_TRUE(manager.ok()) << manager.status();
    manager_ = *std::move(manager);
    inference_ = std::make_unique<WorkerInferenceService>(manager_.get(), nullptr,
                                                          WorkerServiceOptions{});
    models_ = std::make_unique<WorkerModelService>(manager_.get());
    server::ServerOptions server_options;
    server_options.service_name = "worker";
    server_options.grpc_address = "127.0.0.1:0";
    server_options.drain_timeout = absl::Seconds(5);
    server::ServerComponents parts;
    parts.services = {inference_.get(), models_.get()};
    absl::StatusOr<std::unique_ptr<server::RunningServer>> server =
        server::RunningServer::Start(server_options, parts);
    ASSERT_TRUE(server.ok()) << server.status();
    {
      absl::MutexLock lock(&server_mu_);
      server_ = *std::move(server);
    }
    manager_->Start();
    ASSERT_OK(manager_->Load(config.default_model, true, absl::Now() + absl::Seconds(90)));
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    inference_stub_ = v1::InferenceService::NewStub(channel_);
    model_stub_ = v1::ModelService::NewStub(channel_);
  }

  static v1::GenerateRequest Chat(const std::string& model, const std::string& text,
                                  int max_tokens) {
    v1::GenerateRequest request;
    request.set_model(model);
    v1::ChatMessage* m = request.add_messages();
    m->set_role(v1::ROLE_USER);
    m->set_content(text);
    request.mutable_params()->set_max_tokens(max_tokens);
    return request;
  }

  absl::StatusOr<v1::GenerateResponse> Generate(const v1::GenerateRequest& request,
                                                absl::Duration timeout = absl::Seconds(60)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    v1::GenerateResponse response;
    grpc::Status status = inference_stub_->Generate(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  // A stream that has delivered its first delta; read the rest with Finish().
  struct OpenStream {
    std::unique_ptr<grpc::ClientContext> context = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<grpc::ClientReader<v1::GenerateStreamResponse>> reader;
    int deltas = 0;
    std::string content;
    bool all_valid_utf8 = true;  // every delta on its own (protobuf strings must be)
    v1::StreamSummary summary;
    bool has_summary = false;

    absl::Status Finish() {
      v1::GenerateStreamResponse message;
      while (reader->Read(&message)) {
        if (message.has_delta()) {
          ++deltas;
          content += message.delta().content();
          all_valid_utf8 = all_valid_utf8 && text::IsValidUtf8(message.delta().content());
        }
        if (message.has_summary()) {
          summary = message.summary();
          has_summary = true;
        }
      }
      return FromGrpcStatus(reader->Finish());
    }
  };

  OpenStream StartStream(const v1::GenerateRequest& request) {
    OpenStream s;
    s.context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    v1::GenerateStreamRequest stream_request;
    *stream_request.mutable_request() = request;
    s.reader = inference_stub_->GenerateStream(s.context.get(), stream_request);
    v1::GenerateStreamResponse first;
    EXPECT_TRUE(s.reader->Read(&first));
    EXPECT_TRUE(first.has_delta());
    s.deltas = 1;
    return s;
  }

  int BusySlots(const std::string& model) {
    std::shared_ptr<const LlamaClient> client = manager_->ClientOf(model);
    if (client == nullptr) return -1;
    LlamaCallOptions call;
    call.deadline = absl::Now() + absl::Seconds(5);
    absl::StatusOr<SlotsSnapshot> slots = client->Slots(call);
    return slots.ok() ? slots->busy : -1;
  }

  absl::StatusOr<LlamaMetrics> LlamaMetricsOf(const std::string& model) {
    std::shared_ptr<const LlamaClient> client = manager_->ClientOf(model);
    if (client == nullptr) return absl::UnavailableError("not ready");
    LlamaCallOptions call;
    call.deadline = absl::Now() + absl::Seconds(5);
    return client->Metrics(call);
  }

  v1::ModelState StateOf(const std::string& model) {
    absl::StatusOr<ModelSnapshot> s = manager_->Snapshot(model);
    return s.ok() ? ToModelState(s->residency) : v1::MODEL_STATE_UNSPECIFIED;
  }

  std::unique_ptr<http::HttpTransport> transport_;
  std::unique_ptr<ModelManager> manager_;
  std::unique_ptr<WorkerInferenceService> inference_;
  std::unique_ptr<WorkerModelService> models_;
  absl::Mutex server_mu_;
  std::unique_ptr<server::RunningServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::InferenceService::Stub> inference_stub_;
  std::unique_ptr<v1::ModelService::Stub> model_stub_;
};

TEST_F(WorkerServiceTest, UnaryStreamToolsAndListings) {
  StartWorker(Config({Managed("tiny", *g_model_a)}));
  EXPECT_EQ(HealthOf(channel_, ""), HealthStatus::kServing);

  absl::StatusOr<v1::GenerateResponse> unary = Generate(Chat("", "hello", 16));
  ASSERT_OK(unary.status());
  EXPECT_EQ(unary->model(), "tiny");  // empty model: the default
  EXPECT_GT(unary->usage().completion_tokens(), 0);
  EXPECT_GT(unary->usage().prompt_tokens(), 0);
  EXPECT_EQ(unary->cost().nano_usd(), 0);

  // Tools are passed through to llama-server's template (an unknown field would be refused).
  v1::GenerateRequest with_tools = Chat("tiny", "weather in Oslo?", 16);
  v1::Tool* tool = with_tools.add_tools();
  tool->set_name("get_weather");
  tool->set_description("current weather");
  tool->set_parameters_json_schema(R"({"type":"object","properties":{"city":{"type":"string"}}})");
  ASSERT_OK(Generate(with_tools).status());

  // The random test model emits arbitrary bytes, often invalid UTF-8 at token boundaries: every
  // delta must still be valid UTF-8 (repaired, nothing lost).
  OpenStream stream = StartStream(Chat("tiny", "tell me a story", 400));
  ASSERT_OK(stream.Finish());
  EXPECT_TRUE(stream.all_valid_utf8);
  EXPECT_TRUE(text::IsValidUtf8(stream.content));
  EXPECT_TRUE(text::IsValidUtf8(unary->message().content()));
  ASSERT_TRUE(stream.has_summary);
  EXPECT_TRUE(stream.summary.complete());
  EXPECT_GT(stream.summary.usage().completion_tokens(), 0);
  EXPECT_GE(stream.deltas, 1);

  // Bad parameters never reach llama-server.
  v1::GenerateRequest bad = Chat("tiny", "x", 16);
  bad.mutable_params()->set_temperature(-1);
  EXPECT_THAT(Generate(bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT(Generate(Chat("nope", "x", 4)).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));

  grpc::ClientContext list_context;
  v1::ListModelsResponse list;
  ASSERT_TRUE(inference_stub_->ListModels(&list_context, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 1);
  EXPECT_EQ(list.models(0).state(), v1::MODEL_STATE_READY);
  EXPECT_EQ(list.models(0).context_window(), 8192);

  absl::SleepFor(absl::Milliseconds(400));  // one scrape round
  grpc::ClientContext load_context;
  v1::GetLoadRequest load_request;
  v1::GetLoadResponse load;
  ASSERT_TRUE(inference_stub_->GetLoad(&load_context, load_request, &load).ok());
  EXPECT_TRUE(load.ready());
  ASSERT_EQ(load.models_size(), 1);
  EXPECT_EQ(load.models(0).slots_total(), 2);
  EXPECT_EQ(load.models(0).slots_busy(), 0);
  EXPECT_TRUE(load.models(0).accepting());
  EXPECT_GT(load.models(0).kv_cache_usage_ratio(), 0);  // the answers above stay cached
}

TEST_F(WorkerServiceTest, CancellationFreesTheSlotQuickly) {
  StartWorker(Config({Managed("tiny", *g_model_a)}));
  OpenStream stream = StartStream(Chat("tiny", "a very long story", 8000));
  ASSERT_EQ(BusySlots("tiny"), 1);
  const absl::Time cancelled = absl::Now();
  stream.context->TryCancel();
  absl::Duration freed_after = absl::InfiniteDuration();
  while (absl::Now() - cancelled < absl::Seconds(5)) {
    if (BusySlots("tiny") == 0) {
      freed_after = absl::Now() - cancelled;
      break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_LT(freed_after, absl::Milliseconds(250));
  EXPECT_THAT(stream.Finish(), StatusIs(absl::StatusCode::kCancelled, ::testing::_));
}

TEST_F(WorkerServiceTest, DeadlineWhileQueuedNeverReachesLlamaServer) {
  StartWorker(Config({Managed("tiny", *g_model_a, /*parallel=*/1, /*max_queue=*/2)}));
  OpenStream busy = StartStream(Chat("tiny", "a very long story", 8000));
  absl::StatusOr<LlamaMetrics> before = LlamaMetricsOf("tiny");
  ASSERT_OK(before.status());

  const absl::Time start = absl::Now();
  EXPECT_THAT(Generate(Chat("tiny", "queued", 8), absl::Milliseconds(300)).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  absl::StatusOr<LlamaMetrics> after = LlamaMetricsOf("tiny");
  ASSERT_OK(after.status());
  EXPECT_EQ(after->requests_deferred, 0);  // it never waited inside llama-server
  EXPECT_EQ(after->prompt_tokens_total, before->prompt_tokens_total);  // nor was it evaluated
  busy.context->TryCancel();
  (void)busy.Finish();
}

TEST_F(WorkerServiceTest, SaturatedModelRefusesAtOnce) {
  StartWorker(Config({Managed("tiny", *g_model_a, /*parallel=*/1, /*max_queue=*/0)}));
  OpenStream busy = StartStream(Chat("tiny", "a very long story", 8000));
  const absl::Time start = absl::Now();
  EXPECT_THAT(Generate(Chat("tiny", "one more", 8)).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("saturated")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  grpc::ClientContext load_context;
  v1::GetLoadResponse load;
  ASSERT_TRUE(inference_stub_->GetLoad(&load_context, {}, &load).ok());
  EXPECT_FALSE(load.models(0).accepting());
  busy.context->TryCancel();
  (void)busy.Finish();
  // The slot comes back once the handler has returned (the client sees the cancel first).
  for (int i = 0; i < 200 && manager_->Snapshot("tiny")->running > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_OK(Generate(Chat("tiny", "now", 4)).status());
}

TEST_F(WorkerServiceTest, CrashedLlamaServerIsRestartedAndHealthFollows) {
  StartWorker(Config({Managed("tiny", *g_model_a)}));
  const pid_t pid = manager_->ProcessId("tiny");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(HealthOf(channel_, ""), HealthStatus::kServing);
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  // NOT_SERVING within moments; requests in the gap fail fast.
  const absl::Time killed = absl::Now();
  while (HealthOf(channel_, "") != HealthStatus::kNotServing &&
         absl::Now() - killed < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(HealthOf(channel_, ""), HealthStatus::kNotServing);
  const absl::Time asked = absl::Now();
  EXPECT_THAT(Generate(Chat("tiny", "hello?", 4)).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("killed by signal 9")));
  EXPECT_LT(absl::Now() - asked, absl::Milliseconds(500));

  // Restarted after the backoff, SERVING again, and answering.
  while (HealthOf(channel_, "") != HealthStatus::kServing &&
         absl::Now() - killed < absl::Seconds(60)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(HealthOf(channel_, ""), HealthStatus::kServing);
  EXPECT_NE(manager_->ProcessId("tiny"), pid);
  EXPECT_OK(Generate(Chat("tiny", "back?", 4)).status());
  absl::StatusOr<ModelSnapshot> snapshot = manager_->Snapshot("tiny");
  ASSERT_OK(snapshot.status());
  EXPECT_EQ(snapshot->restarts, 1);
}

TEST_F(WorkerServiceTest, LeastRecentlyUsedResidencyDrainsBeforeUnloading) {
  WorkerConfig config = Config({Managed("a", *g_model_a), Managed("b", *g_model_b)});
  config.max_loaded = 1;
  StartWorker(config);
  EXPECT_EQ(StateOf("a"), v1::MODEL_STATE_READY);
  EXPECT_EQ(StateOf("b"), v1::MODEL_STATE_UNLOADED);

  // A request in flight on "a" while an unload of "a" is asked for: it completes.
  OpenStream in_flight = StartStream(Chat("a", "a long story", 1500));
  std::atomic<bool> unloaded{false};
  grpc::Status unload_status;
  std::thread unloader([&] {
    grpc::ClientContext context;
    v1::UnloadModelRequest request;
    request.set_model("a");
    v1::UnloadModelResponse response;
    unload_status = model_stub_->UnloadModel(&context, request, &response);
    unloaded = true;
  });
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_OK(in_flight.Finish());
  EXPECT_TRUE(in_flight.summary.complete());
  unloader.join();
  EXPECT_TRUE(unload_status.ok()) << unload_status.error_message();
  EXPECT_EQ(StateOf("a"), v1::MODEL_STATE_UNLOADED);

  // On demand: "b" loads; then "a" again, which evicts "b" (max_loaded 1).
  ASSERT_OK(Generate(Chat("b", "hi b", 4)).status());
  EXPECT_EQ(StateOf("b"), v1::MODEL_STATE_READY);
  ASSERT_OK(Generate(Chat("a", "hi a", 4)).status());
  EXPECT_EQ(StateOf("a"), v1::MODEL_STATE_READY);
  EXPECT_EQ(StateOf("b"), v1::MODEL_STATE_UNLOADED);

  grpc::ClientContext list_context;
  v1::ModelServiceListModelsResponse list;
  ASSERT_TRUE(model_stub_->ListModels(&list_context, {}, &list).ok());
  ASSERT_EQ(list.models_size(), 2);
  for (const v1::ResidentModel& m : list.models()) {
    EXPECT_EQ(m.kind(), "managed");
    EXPECT_TRUE(m.has_last_used());
  }
}

TEST_F(WorkerServiceTest, ModelFileWithWrongDigestIsRefused) {
  WorkerConfig config =
      Config({Managed("good", *g_model_a), Managed("tampered", *g_model_b)});
  config.models[1].managed_config.sha256 = std::string(64, 'a');
  config.models[0].managed_config.sha256 = crypto::Sha256Hex([] {
    std::ifstream in(*g_model_a, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }());
  StartWorker(config);  // the good one's digest matches

  grpc::ClientContext context;
  v1::LoadModelRequest request;
  request.set_model("tampered");
  request.set_wait(true);
  v1::LoadModelResponse response;
  grpc::Status status = model_stub_->LoadModel(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("sha256 mismatch"));
  EXPECT_THAT(Generate(Chat("tampered", "x", 4)).status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("sha256 mismatch")));
  EXPECT_EQ(StateOf("tampered"), v1::MODEL_STATE_FAILED);
  EXPECT_OK(Generate(Chat("good", "x", 4)).status());
}

}  // namespace
}  // namespace tiermesh::worker
