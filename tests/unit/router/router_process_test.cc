// The tiermesh-router binary as a black box: it serves the example policy,
// and its policy file is hot-reloaded (a bad edit is refused and the old
// policy keeps serving; a good one shows in the next decision's version).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

#include "tiermesh/v1/router.grpc.pb.h"

namespace tiermesh::router {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  // Write then rename, as editors and ConfigMap updates do.
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << text;
  ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
}

class RouterProcess {
 public:
  explicit RouterProcess(const std::string& policy_path) {
    std::vector<std::string> args = {TIERMESH_ROUTER_PATH, "--config",        policy_path,
                                     "--grpc_address",     "127.0.0.1:0",     "--metrics_address",
                                     "127.0.0.1:0",        "--drain_timeout", "1s"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // Nothing listens on port 1: the classifier and backends are unreachable.
    std::vector<std::string> env = {"TIERMESH_CLASSIFIER_ADDR=127.0.0.1:1",
                                    "TIERMESH_WORKER_ADDR=127.0.0.1:1",
                                    "TIERMESH_CLOUD_PROXY_ADDR=127.0.0.1:1", "PATH=/usr/bin:/bin"};
    std::vector<char*> envp;
    for (std::string& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    int err[2];
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data()), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(err[1]);
    stderr_fd_ = err[0];
  }

  ~RouterProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (stderr_fd_ >= 0) close(stderr_fd_);
  }

  // The next log line (blocking; "" at end of output).
  std::string NextLine() {
    std::string line;
    char c = 0;
    while (read(stderr_fd_, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }

  // Reads log lines until one contains `text`; the line, or "" at the end.
  std::string WaitForLine(const std::string& text) {
    for (std::string line = NextLine(); !line.empty(); line = NextLine()) {
      if (absl::StrContains(line, text)) return line;
    }
    return "";
  }

 private:
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
};

std::string PolicyVersion(v1::RouterService::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ExplainRequest request;
  v1::ChatMessage* m = request.mutable_request()->add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content("hello");
  v1::ExplainResponse response;
  grpc::Status status = stub.Explain(&context, request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.decision().policy_version();
}

TEST(RouterProcessTest, PolicyFileIsHotReloaded) {
  char dir[] = "/tmp/tiermesh-router-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/router.yaml";
  const std::string original = ReadFile(TIERMESH_SOURCE_DIR "/deploy/config/router.yaml");
  ASSERT_TRUE(absl::StrContains(original, "max_tokens: 512"));
  WriteFile(path, original);

  RouterProcess router(path);
  const std::string started = router.WaitForLine("\"server started\"");
  ASSERT_FALSE(started.empty()) << "the router did not start";
  const size_t at = started.find("\"port\":");
  ASSERT_NE(at, std::string::npos) << started;
  int port = 0;
  ASSERT_TRUE(
      absl::SimpleAtoi(started.substr(at + 7, started.find_first_of(",}", at) - at - 7), &port))
      << started;
  auto stub = v1::RouterService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  const std::string v1 = PolicyVersion(*stub);
  ASSERT_FALSE(v1.empty());

  // A bad edit: refused with the key's path, the old policy keeps serving.
  WriteFile(path, original + "\nbogus_key: 1\n");
  const std::string refused = router.WaitForLine("policy reload rejected");
  EXPECT_TRUE(absl::StrContains(refused, "unknown key 'bogus_key'")) << refused;
  EXPECT_EQ(PolicyVersion(*stub), v1);

  // A good edit: the next decisions carry the new version.
  WriteFile(path, absl::StrReplaceAll(original, {{"max_tokens: 512", "max_tokens: 500"}}));
  const std::string reloaded = router.WaitForLine("\"policy reloaded\"");
  EXPECT_FALSE(reloaded.empty());
  const std::string v2 = PolicyVersion(*stub);
  EXPECT_NE(v2, v1);
  EXPECT_TRUE(absl::StrContains(reloaded, v2)) << reloaded;
  std::remove(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace tiermesh::router
