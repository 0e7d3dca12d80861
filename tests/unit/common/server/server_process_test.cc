// Black-box tests of a service-shaped binary (server_probe): the one-line
// startup errors and exit codes, and real SIGTERM / SIGINT handling.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

#include "tests/unit/common/metrics/scrape_util.h"
#include "tests/unit/common/server/grpc_probe_util.h"
#include "tiermesh/v1/classifier.grpc.pb.h"

extern char** environ;

namespace tiermesh::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

Child Spawn(const std::vector<std::string>& flags) {
  std::vector<std::string> args = {SERVER_PROBE_PATH};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  int out[2];
  int err[2];
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  Child child;
  EXPECT_EQ(posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  child.stdout_fd = out[0];
  child.stderr_fd = err[0];
  return child;
}

std::string ReadAll(int fd) {
  std::string out;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      out.append(buffer, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fd);
  return out;
}

std::string ReadLine(int fd) {
  std::string line;
  char c = 0;
  while (read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
  return line;
}

// The exit code, or 128 + signal for a child killed by a signal; nullopt if
// it did not end within `limit` (it is then killed).
std::optional<int> WaitExit(pid_t pid, absl::Duration limit) {
  const absl::Time give_up = absl::Now() + limit;
  while (absl::Now() < give_up) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return std::nullopt;
}

struct Result {
  std::optional<int> exit_code;
  std::string out;
  std::string err;
};

Result RunToEnd(const std::vector<std::string>& flags) {
  Child child = Spawn(flags);
  Result result;
  result.out = ReadAll(child.stdout_fd);
  result.err = ReadAll(child.stderr_fd);
  result.exit_code = WaitExit(child.pid, absl::Seconds(20));
  return result;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(ServerProbe, UnknownFlagIsOneLineAndNonZeroExit) {
  Result result = RunToEnd({"--bogus=1"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "probe: error: unknown flag '--bogus' (see --helpfull)\n");
  EXPECT_EQ(result.out, "");
}

TEST(ServerProbe, DashedAndUnderscoredFlagsBothWork) {
  Result result = RunToEnd({"--config=c.yaml", "--metrics-address", "127.0.0.1:9",
                            "--log-level=debug", "--drain_timeout=90s"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "config=c.yaml grpc= metrics=127.0.0.1:9 log=debug drain=1m30s\n");
}

TEST(ServerProbe, BadValuesAreOneLineErrors) {
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--drain_timeout=soon"}, "--drain_timeout: 'soon' is not a finite duration"},
      {{"--drain_timeout=-5s"}, "--drain_timeout"},
      {{"--log_level=loud"}, "--log_level:"},
      {{"--metrics_address=9090"}, "--metrics_address:"},
      {{"--grpc_address=nowhere"}, "--grpc_address:"},
      {{"stray"}, "unexpected argument 'stray'"},
  };
  for (const Case& c : cases) {
    Result result = RunToEnd(c.flags);
    EXPECT_EQ(result.exit_code, 1) << ::testing::PrintToString(c.flags);
    ASSERT_EQ(Lines(result.err).size(), 1u) << result.err;
    EXPECT_THAT(result.err, StartsWith("probe: error: "));
    EXPECT_THAT(result.err, HasSubstr(c.message));
  }
}

// A port held by a plain listening socket.
class HeldPort {
 public:
  HeldPort() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~HeldPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(ServerProbe, PortInUseEndsWithAClearLineAndNonZeroExit) {
  HeldPort held;
  const std::string address = "127.0.0.1:" + std::to_string(held.port());
  Result result = RunToEnd({"--grpc_address=" + address});
  EXPECT_EQ(result.exit_code, 1);
  std::vector<std::string> lines = Lines(result.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines.back(), StartsWith("probe: error: cannot listen for gRPC on '" + address));
  EXPECT_EQ(result.out, "");
}

TEST(ServerProbe, MetricsPortInUseEndsWithAClearLine) {
  HeldPort held;
  Result result = RunToEnd(
      {"--grpc_address=127.0.0.1:0", "--metrics_address=127.0.0.1:" + std::to_string(held.port())});
  EXPECT_EQ(result.exit_code, 1);
  ASSERT_EQ(Lines(result.err).size(), 1u) << result.err;
  EXPECT_THAT(result.err, StartsWith("probe: error: cannot serve metrics on '127.0.0.1:"));
}

// A running probe, with its ports read from its "port=N metrics=M" line.
class RunningProbe {
 public:
  explicit RunningProbe(std::vector<std::string> flags) {
    flags.push_back("--grpc_address=127.0.0.1:0");
    flags.push_back("--metrics_address=127.0.0.1:0");
    child_ = Spawn(flags);
    const std::string line = ReadLine(child_.stdout_fd);
    for (absl::string_view part : absl::StrSplit(line, ' ')) {
      if (absl::ConsumePrefix(&part, "port=")) {
        EXPECT_TRUE(absl::SimpleAtoi(part, &port_));
      } else if (absl::ConsumePrefix(&part, "metrics=")) {
        EXPECT_TRUE(absl::SimpleAtoi(part, &metrics_));
      }
    }
  }
  ~RunningProbe() {
    if (!waited_) WaitExit(child_.pid, absl::ZeroDuration());
    close(child_.stdout_fd);
    if (stderr_fd_open_) close(child_.stderr_fd);
  }

  int port() const { return port_; }
  void Signal(int signal) { kill(child_.pid, signal); }
  std::optional<int> Exit(absl::Duration limit) {
    waited_ = true;
    return WaitExit(child_.pid, limit);
  }
  std::string Stderr() {
    stderr_fd_open_ = false;
    return ReadAll(child_.stderr_fd);
  }
  std::optional<double> ClassifyInFlight() {
    absl::StatusOr<std::string> text = tiermesh::testing::ScrapeMetrics(metrics_);
    if (!text.ok()) return std::nullopt;
    return tiermesh::testing::SampleValue(*text, "tiermesh_grpc_server_in_flight",
                                          {{"method", "/tiermesh.v1.ClassifierService/Classify"}});
  }
  // Waits (bounded) until a call is blocked in the probe's handler.
  bool AwaitInFlight() {
    for (int i = 0; i < 400; ++i) {
      if (ClassifyInFlight() == 1) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

 private:
  Child child_;
  int port_ = 0;
  int metrics_ = 0;
  bool waited_ = false;
  bool stderr_fd_open_ = true;
};

grpc::Status ClassifyBlocking(int port) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = tiermesh::v1::ClassifierService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  tiermesh::v1::ClassifyRequest request;
  request.set_text("block");
  tiermesh::v1::ClassifyResponse response;
  return stub->Classify(&context, request, &response);
}

// Waits until the probe refuses new calls (it is draining).
bool AwaitRefusal(int port) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  for (int i = 0; i < 400; ++i) {
    absl::StatusOr<tiermesh::testing::HealthStatus> health =
        tiermesh::testing::CheckHealth(channel, "");
    if (!health.ok()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

TEST(ServerProbe, SigtermWhenIdleExitsZero) {
  RunningProbe probe({});
  ASSERT_GT(probe.port(), 0);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(probe.port()),
                                     grpc::InsecureChannelCredentials());
  EXPECT_EQ(tiermesh::testing::HealthOf(channel, ""), tiermesh::testing::HealthStatus::kServing);
  probe.Signal(SIGTERM);
  EXPECT_EQ(probe.Exit(absl::Seconds(20)), 0);
  const std::string err = probe.Stderr();
  EXPECT_THAT(err, HasSubstr("\"msg\":\"shutdown requested\""));
  EXPECT_THAT(err, HasSubstr("\"signal\":\"SIGTERM\""));
  EXPECT_THAT(err, HasSubstr("\"msg\":\"server stopped\""));
}

TEST(ServerProbe, DrainTimeoutCancelsAStuckCallThenExitsZero) {
  RunningProbe probe({"--drain_timeout=300ms"});
  grpc::Status stuck;
  std::thread caller([&] { stuck = ClassifyBlocking(probe.port()); });
  ASSERT_TRUE(probe.AwaitInFlight());
  const absl::Time began = absl::Now();
  probe.Signal(SIGINT);
  EXPECT_EQ(probe.Exit(absl::Seconds(20)), 0);
  EXPECT_GE(absl::Now() - began, absl::Milliseconds(250));
  caller.join();
  EXPECT_FALSE(stuck.ok());
}

TEST(ServerProbe, SecondSignalExitsAtOnceWithNonZeroCode) {
  RunningProbe probe({"--drain_timeout=60s"});
  grpc::Status stuck;
  std::thread caller([&] { stuck = ClassifyBlocking(probe.port()); });
  ASSERT_TRUE(probe.AwaitInFlight());
  probe.Signal(SIGTERM);
  ASSERT_TRUE(AwaitRefusal(probe.port()));  // draining, held by the stuck call
  const absl::Time began = absl::Now();
  probe.Signal(SIGTERM);
  EXPECT_EQ(probe.Exit(absl::Seconds(20)), 128 + SIGTERM);
  EXPECT_LT(absl::Now() - began, absl::Seconds(10));  // not the 60 s drain
  caller.join();
  EXPECT_FALSE(stuck.ok());
  EXPECT_THAT(probe.Stderr(), HasSubstr("second signal: exiting without draining"));
}

}  // namespace
}  // namespace tiermesh::server
