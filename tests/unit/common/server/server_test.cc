#include "services/common/server/server.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/signal_source.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/common/metrics/grpc_test_services.h"
#include "tests/unit/common/metrics/scrape_util.h"
#include "tests/unit/common/server/grpc_probe_util.h"
#include "tiermesh/v1/classifier.grpc.pb.h"

namespace tiermesh::server {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::tiermesh::testing::CheckHealth;
using ::tiermesh::testing::Gate;
using ::tiermesh::testing::HealthOf;
using ::tiermesh::testing::HealthStatus;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::SampleValue;
using ::tiermesh::testing::StatusIs;
using ::tiermesh::testing::SyncClassifier;
using ::tiermesh::testing::SyncInference;

constexpr char kClassifierName[] = "tiermesh.v1.ClassifierService";

TEST(ValidateGrpcAddress, Table) {
  struct Case {
    std::string address;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1:0", true},
      {"0.0.0.0:50051", true},
      {"[::]:50051", true},
      {"localhost:8080", true},
      {"unix:/tmp/x.sock", true},
      {"unix-abstract:tm", true},
      {"", false},
      {"unix:", false},
      {"50051", false},
      {"127.0.0.1:70000", false},
      {"::1:80", false},
      {"host:port", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ValidateGrpcAddress(c.address).ok(), c.ok) << "address: '" << c.address << "'";
  }
}

std::shared_ptr<grpc::Channel> ChannelTo(int port) {
  return grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                             grpc::InsecureChannelCredentials());
}

grpc::Status Classify(const std::shared_ptr<grpc::Channel>& channel, const std::string& text) {
  auto stub = tiermesh::v1::ClassifierService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  tiermesh::v1::ClassifyRequest request;
  request.set_text(text);
  tiermesh::v1::ClassifyResponse response;
  return stub->Classify(&context, request, &response);
}

// After a shutdown request new calls must be refused while old ones run.
// The refusal starts a moment after the request (gRPC's own shutdown), so
// try a bounded number of times; each call uses a fresh channel (a new
// connection, like a new client). A call that reaches gRPC while it shuts
// down is cancelled (CANCELLED); one that comes after finds no listener
// (UNAVAILABLE).
::testing::AssertionResult NewCallsGetRefused(int port) {
  for (int i = 0; i < 400; ++i) {
    grpc::Status status = Classify(ChannelTo(port), "ok");
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        status.error_code() == grpc::StatusCode::CANCELLED) {
      return ::testing::AssertionSuccess();
    }
    if (!status.ok()) {
      return ::testing::AssertionFailure()
             << "refused with " << status.error_code() << ": " << status.error_message();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return ::testing::AssertionFailure() << "new calls still accepted";
}

// A server test with one sync classifier and inference service, logs kept
// in memory.
class ServerTest : public ::testing::Test {
 protected:
  ServerOptions Options() {
    ServerOptions options;
    options.service_name = "test";
    options.grpc_address = "127.0.0.1:0";
    options.health_service_names = {kClassifierName};
    options.drain_timeout = absl::Seconds(30);
    logging::LoggerOptions log_options;
    log_options.service = "test";
    log_options.sink = log_sink_;
    options.logger = logging::Logger(std::move(log_options));
    return options;
  }
  ServerComponents Components() {
    ServerComponents components;
    components.services = {&classifier_, &inference_};
    return components;
  }
  bool Logged(const std::string& message) {
    for (const std::string& line : log_sink_->Lines()) {
      if (line.find("\"msg\":\"" + message + "\"") != std::string::npos) return true;
    }
    return false;
  }

  void TearDown() override { gate_.Open(); }

  std::shared_ptr<logging::MemorySink> log_sink_ = std::make_shared<logging::MemorySink>();
  Gate gate_;
  SyncClassifier classifier_{&gate_};
  SyncInference inference_{&gate_};
};

TEST_F(ServerTest, HealthIsNotServingUntilReadyThenServing) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(Options(), Components()));
  ASSERT_GT(server->port(), 0);
  auto channel = ChannelTo(server->port());
  EXPECT_EQ(HealthOf(channel, ""), HealthStatus::kNotServing);
  EXPECT_EQ(HealthOf(channel, kClassifierName), HealthStatus::kNotServing);
  EXPECT_THAT(CheckHealth(channel, "no.such.Service"),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));

  server->SetServing(true);
  EXPECT_TRUE(server->serving());
  EXPECT_EQ(HealthOf(channel, ""), HealthStatus::kServing);
  EXPECT_EQ(HealthOf(channel, kClassifierName), HealthStatus::kServing);

  server->SetServing(false);  // e.g. the worker lost its llama-server
  EXPECT_EQ(HealthOf(channel, ""), HealthStatus::kNotServing);
  EXPECT_EQ(HealthOf(channel, kClassifierName), HealthStatus::kNotServing);
  // The service itself answers whatever health says.
  EXPECT_TRUE(Classify(channel, "ok").ok());
  server->Shutdown();
  EXPECT_TRUE(Logged("server started"));
  EXPECT_TRUE(Logged("server stopped"));
}

TEST_F(ServerTest, ReflectionListsTheServices) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(Options(), Components()));
  ASSERT_OK_AND_ASSIGN(std::string listing,
                       tiermesh::testing::ListServicesByReflection(ChannelTo(server->port())));
  EXPECT_THAT(listing, HasSubstr("tiermesh.v1.ClassifierService"));
  EXPECT_THAT(listing, HasSubstr("tiermesh.v1.InferenceService"));
  EXPECT_THAT(listing, HasSubstr("grpc.health.v1.Health"));
}

TEST_F(ServerTest, MetricsInterceptorIsInstalled) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<metrics::MetricsServer> metrics,
                       metrics::MetricsServer::Start("127.0.0.1:0"));
  ServerComponents components = Components();
  components.metrics_registry = metrics->shared_registry();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(Options(), components));
  auto channel = ChannelTo(server->port());
  EXPECT_TRUE(Classify(channel, "ok").ok());
  EXPECT_FALSE(Classify(channel, "fail").ok());
  ASSERT_OK_AND_ASSIGN(std::string text, tiermesh::testing::ScrapeMetrics(metrics->port()));
  const std::string method = "/tiermesh.v1.ClassifierService/Classify";
  EXPECT_EQ(SampleValue(text, "tiermesh_grpc_server_requests_total",
                        {{"method", method}, {"code", "OK"}}),
            1);
  EXPECT_EQ(SampleValue(text, "tiermesh_grpc_server_requests_total",
                        {{"method", method}, {"code", "INVALID_ARGUMENT"}}),
            1);
  EXPECT_EQ(SampleValue(text, "tiermesh_grpc_server_in_flight", {{"method", method}}), 0);
}

TEST_F(ServerTest, PortInUseIsAClearError) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> first,
                       RunningServer::Start(Options(), ServerComponents()));
  ServerOptions options = Options();
  options.grpc_address = "127.0.0.1:" + std::to_string(first->port());
  EXPECT_THAT(RunningServer::Start(options, ServerComponents()).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("cannot listen"), HasSubstr(options.grpc_address))));
}

TEST_F(ServerTest, PortsFileNamesTheBoundPortsAndAnUnwritableOneIsAnError) {
  const std::string dir = ::testing::TempDir();
  ServerOptions options = Options();
  options.ports_file = dir + "/tiermesh-ports-" + std::to_string(getpid()) + ".json";
  options.metrics_port = 9999;
  std::remove(options.ports_file.c_str());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(options, Components()));
  std::ifstream in(options.ports_file);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), "{\"service\":\"test\",\"grpc_port\":" +
                            std::to_string(server->port()) + ",\"metrics_port\":9999}\n");
  server->Shutdown();
  std::remove(options.ports_file.c_str());

  options.ports_file = dir + "/no-such-directory/ports.json";
  EXPECT_THAT(RunningServer::Start(options, Components()).status(),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("ports file"), HasSubstr("no-such-directory"))));
}

TEST_F(ServerTest, BadOptionsAreClearErrors) {
  ServerOptions options = Options();
  options.grpc_address = "localhost";
  EXPECT_THAT(RunningServer::Start(options, Components()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("grpc address"), HasSubstr("no port"))));
  options = Options();
  options.service_name = "";
  EXPECT_THAT(RunningServer::Start(options, Components()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("service_name")));
  options = Options();
  options.drain_timeout = -absl::Seconds(1);
  EXPECT_THAT(RunningServer::Start(options, Components()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("drain_timeout")));
  options = Options();
  options.keepalive_time = -absl::Seconds(1);
  EXPECT_THAT(RunningServer::Start(options, Components()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keepalive_time")));
  options = Options();
  options.max_pollers = 0;
  EXPECT_THAT(RunningServer::Start(options, Components()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_pollers")));
  ServerComponents twice;
  twice.services = {&classifier_, &classifier_};
  EXPECT_THAT(RunningServer::Start(Options(), twice).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  ServerComponents null_service;
  null_service.services = {nullptr};
  EXPECT_THAT(RunningServer::Start(Options(), null_service).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("null")));
}

TEST_F(ServerTest, ShutdownDrainsInFlightCallsAndRefusesNewOnes) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(Options(), Components()));
  server->SetServing(true);
  const int port = server->port();
  grpc::Status in_flight;
  std::thread caller([&] { in_flight = Classify(ChannelTo(port), "block"); });
  gate_.AwaitWaiters(1);

  std::thread stopper([&] { server->Shutdown(); });
  EXPECT_TRUE(NewCallsGetRefused(port));
  EXPECT_TRUE(server->draining());
  EXPECT_FALSE(server->serving());
  server->SetServing(true);  // too late: a draining server stays NOT_SERVING
  EXPECT_FALSE(server->serving());

  gate_.Open();  // the in-flight call may now finish
  caller.join();
  stopper.join();
  EXPECT_TRUE(in_flight.ok()) << in_flight.error_message();
  EXPECT_TRUE(Logged("draining"));
}

TEST_F(ServerTest, HealthWatchersSeeNotServingAndDoNotHoldTheDrain) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(Options(), Components()));  // drain timeout 30 s
  server->SetServing(true);
  tiermesh::testing::HealthWatcher watcher(ChannelTo(server->port()), kClassifierName);
  EXPECT_EQ(watcher.Next(), HealthStatus::kServing);
  const absl::Time began = absl::Now();
  std::thread stopper([&] { server->Shutdown(); });
  // The watcher is told NOT_SERVING, then its stream is ended (both count as
  // "unhealthy" for gRPC's client-side health checking; the update may lose
  // the race with the cancellation, so it is not required).
  int updates = 0;
  while (std::optional<HealthStatus> next = watcher.Next()) {
    EXPECT_EQ(*next, HealthStatus::kNotServing);
    ASSERT_LT(++updates, 3);
  }
  stopper.join();
  EXPECT_LT(absl::Now() - began, absl::Seconds(10));
  EXPECT_FALSE(watcher.Finish().ok());
  EXPECT_TRUE(Logged("ended health watches"));
}

TEST_F(ServerTest, DrainTimeoutCancelsCallsThatDoNotFinish) {
  ServerOptions options = Options();
  options.drain_timeout = absl::Milliseconds(200);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(options, Components()));
  const int port = server->port();
  grpc::Status stuck;
  std::thread caller([&] { stuck = Classify(ChannelTo(port), "block"); });
  gate_.AwaitWaiters(1);
  const absl::Time began = absl::Now();
  server->Shutdown();  // the gate never opens
  const absl::Duration took = absl::Now() - began;
  caller.join();
  EXPECT_FALSE(stuck.ok());
  EXPECT_GE(took, absl::Milliseconds(150));
  EXPECT_LT(took, absl::Seconds(10));
}

TEST_F(ServerTest, ShutdownIsIdempotentAndWaitReturnsAfterIt) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<RunningServer> server,
                       RunningServer::Start(Options(), Components()));
  std::thread waiter([&] { server->Wait(); });
  server->Shutdown();
  server->Shutdown();
  waiter.join();
  EXPECT_TRUE(server->draining());
}

// RunServer driven by hand-raised signals.
class RunServerTest : public ServerTest {
 protected:
  // Starts RunServer on a thread; returns once warm-up has begun.
  void Run(LifecycleHooks hooks) {
    std::function<absl::Status(RunningServer&)> inner = hooks.warm_up;
    hooks.warm_up = [this, inner](RunningServer& server) {
      port_ = server.port();
      started_.Notify();
      return inner ? inner(server) : absl::OkStatus();
    };
    hooks.on_stopped = [this] { stopped_hook_ran_ = true; };
    RunEnvironment env;
    env.signals = &signals_;
    env.exit_now = [this](int code) {
      exit_code_ = code;
      exited_.Notify();
    };
    thread_ = std::thread([this, hooks, env] {
      result_ = RunServer(Options(), Components(), hooks, env);
      returned_.Notify();
    });
    started_.WaitForNotification();
  }

  absl::Status Join() {
    thread_.join();
    return result_;
  }

  // Health of "" once it reaches `want` (bounded wait: warm-up runs on
  // another thread).
  std::optional<HealthStatus> AwaitHealth(HealthStatus want) {
    std::optional<HealthStatus> last;
    for (int i = 0; i < 400; ++i) {
      absl::StatusOr<HealthStatus> health = CheckHealth(ChannelTo(port_), "");
      if (health.ok()) last = *health;
      if (last == want) break;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return last;
  }

  ManualSignalSource signals_;
  std::thread thread_;
  absl::Status result_;
  absl::Notification started_;
  absl::Notification returned_;
  absl::Notification exited_;
  int port_ = 0;
  int exit_code_ = 0;
  bool stopped_hook_ran_ = false;
};

TEST_F(RunServerTest, ServingAfterWarmUpThenDrainsOnSignalAndReturnsOk) {
  absl::Notification release_warm_up;
  LifecycleHooks hooks;
  hooks.warm_up = [&](RunningServer&) {
    release_warm_up.WaitForNotification();
    return absl::OkStatus();
  };
  Run(hooks);
  auto channel = ChannelTo(port_);
  EXPECT_EQ(HealthOf(channel, ""), HealthStatus::kNotServing);
  EXPECT_EQ(HealthOf(channel, kClassifierName), HealthStatus::kNotServing);
  release_warm_up.Notify();
  EXPECT_EQ(AwaitHealth(HealthStatus::kServing), HealthStatus::kServing);
  EXPECT_EQ(HealthOf(channel, kClassifierName), HealthStatus::kServing);

  // A call that starts before the signal completes after it.
  grpc::Status in_flight;
  std::thread caller([&] { in_flight = Classify(ChannelTo(port_), "block"); });
  gate_.AwaitWaiters(1);
  signals_.Raise(SIGTERM);
  EXPECT_TRUE(NewCallsGetRefused(port_));
  EXPECT_FALSE(returned_.HasBeenNotified());  // still draining
  gate_.Open();
  caller.join();
  EXPECT_TRUE(in_flight.ok()) << in_flight.error_message();

  EXPECT_THAT(Join(), IsOk());
  EXPECT_TRUE(stopped_hook_ran_);
  EXPECT_FALSE(exited_.HasBeenNotified());
  EXPECT_TRUE(Logged("shutdown requested"));
}

TEST_F(RunServerTest, SecondSignalExitsAtOnceWithoutWaitingForTheDrain) {
  Run({});
  EXPECT_EQ(AwaitHealth(HealthStatus::kServing), HealthStatus::kServing);
  grpc::Status in_flight;
  std::thread caller([&] { in_flight = Classify(ChannelTo(port_), "block"); });
  gate_.AwaitWaiters(1);
  signals_.Raise(SIGTERM);
  signals_.Raise(SIGINT);
  // The drain is stuck on the blocked call (drain timeout 30 s), yet the
  // exit comes now.
  exited_.WaitForNotification();
  EXPECT_EQ(exit_code_, 128 + SIGINT);
  EXPECT_FALSE(returned_.HasBeenNotified());
  EXPECT_TRUE(Logged("second signal: exiting without draining"));

  // The injected exit returned; let the drain finish so the test can end.
  gate_.Open();
  caller.join();
  EXPECT_THAT(Join(), IsOk());
}

TEST_F(RunServerTest, WarmUpErrorStopsTheServerAndIsReturned) {
  LifecycleHooks hooks;
  hooks.warm_up = [](RunningServer&) {
    return absl::FailedPreconditionError("model file missing: /models/x.gguf");
  };
  Run(hooks);
  EXPECT_THAT(Join(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("x.gguf")));
  EXPECT_TRUE(stopped_hook_ran_);
  EXPECT_TRUE(Logged("warm-up failed"));
  EXPECT_FALSE(Logged("serving"));
}

TEST_F(RunServerTest, SignalDuringWarmUpStopsWithoutEverServing) {
  LifecycleHooks hooks;
  hooks.warm_up = [](RunningServer& server) {
    // A warm-up that gives up once the server drains.
    while (!server.draining()) absl::SleepFor(absl::Milliseconds(1));
    return absl::OkStatus();
  };
  Run(hooks);
  signals_.Raise(SIGTERM);
  EXPECT_THAT(Join(), IsOk());
  EXPECT_FALSE(Logged("serving"));
}

TEST(RunServer, StartErrorIsReturned) {
  ManualSignalSource signals;
  RunEnvironment env;
  env.signals = &signals;
  ServerOptions options;
  options.service_name = "test";
  options.grpc_address = "not an address";
  options.logger = logging::Logger::Discard();
  EXPECT_THAT(RunServer(options, ServerComponents(), {}, env),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an address")));
}

TEST(PosixSignalSource, DeliversRealSignalsAndRestoresHandlers) {
  struct sigaction before;
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &before), 0);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PosixSignalSource> source,
                         PosixSignalSource::Create({SIGUSR1}));
    EXPECT_THAT(PosixSignalSource::Create({SIGUSR2}).status(),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("another")));
    ASSERT_EQ(raise(SIGUSR1), 0);
    EXPECT_EQ(source->Next(), SIGUSR1);
    ASSERT_EQ(raise(SIGUSR1), 0);
    EXPECT_EQ(source->Next(), SIGUSR1);
    source->Close();
    EXPECT_EQ(source->Next(), 0);
    EXPECT_EQ(source->Next(), 0);
  }
  struct sigaction after;
  ASSERT_EQ(sigaction(SIGUSR1, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  // A new source can be created once the old one is gone.
  EXPECT_THAT(PosixSignalSource::Create({SIGUSR1}).status(), IsOk());
}

TEST(ManualSignalSource, DeliversInOrderAndCloses) {
  ManualSignalSource source;
  source.Raise(SIGTERM);
  source.Raise(SIGINT);
  EXPECT_EQ(source.Next(), SIGTERM);
  EXPECT_EQ(source.Next(), SIGINT);
  std::thread closer([&] { source.Close(); });
  EXPECT_EQ(source.Next(), 0);
  closer.join();
}

}  // namespace
}  // namespace tiermesh::server
