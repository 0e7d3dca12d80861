#include "tests/unit/worker/llama_server_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "services/common/http/http_client.h"

extern char** environ;

namespace tiermesh::worker::testing {
namespace {

constexpr absl::string_view kListening = "listening on http://127.0.0.1:";

std::string Tail(const std::string& text, size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

}  // namespace

absl::StatusOr<std::string> FindLlamaServerBinary() {
  const char* source_dir = std::getenv("TIERMESH_SOURCE_DIR");
  if (source_dir == nullptr || *source_dir == '\0') {
    return absl::NotFoundError("TIERMESH_SOURCE_DIR is not set (run the test through ctest)");
  }
  const std::string command =
      absl::StrCat(source_dir, "/scripts/provide-llama-server.sh --no-build 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::InternalError("popen failed");
  std::string out;
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  const std::string path(absl::StripAsciiWhitespace(out));
  if (status != 0 || path.empty()) {
    return absl::NotFoundError(
        "no llama-server: set TIERMESH_LLAMA_SERVER, put one on PATH, or run "
        "scripts/provide-llama-server.sh once to build and cache it");
  }
  return path;
}

absl::StatusOr<std::string> WriteTestModel(const std::string& dir,
                                           const test_model::TestModelOptions& options) {
  absl::StatusOr<std::string> model = test_model::BuildTestModel(options);
  if (!model.ok()) return model.status();
  const std::string path =
      absl::StrCat(dir, "/tiermesh-test-model-", getpid(), "-", options.seed, ".gguf");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(model->data(), static_cast<std::streamsize>(model->size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return path;
}

absl::StatusOr<std::unique_ptr<LlamaServerProcess>> LlamaServerProcess::Start(
    const Options& options) {
  std::vector<std::string> args = {options.binary,
                                   "--model",
                                   options.model_path,
                                   "--host",
                                   "127.0.0.1",
                                   "--port",
                                   "0",
                                   "--ctx-size",
                                   absl::StrCat(options.ctx_size),
                                   "--parallel",
                                   absl::StrCat(options.parallel),
                                   "--threads",
                                   absl::StrCat(options.threads),
                                   "--no-warmup"};
  if (options.metrics) args.push_back("--metrics");
  if (!options.api_key.empty()) {
    args.push_back("--api-key");
    args.push_back(options.api_key);
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());

  // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "LLAMA_ARG_")) envp.push_back(*e);
  }
  envp.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);

  std::unique_ptr<LlamaServerProcess> process(new LlamaServerProcess());
  process->pid_ = pid;
  process->reader_ = std::thread([p = process.get(), fd = fds[0]] { p->ReadOutput(fd); });

  const absl::Time deadline = absl::Now() + options.startup_timeout;
  {
    absl::MutexLock lock(&process->mu_);
    auto ready = [p = process.get()]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
      return p->listening_port_ != 0 || p->output_closed_;
    };
    process->mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    process->port_ = process->listening_port_;
  }
  if (process->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("llama-server did not start listening:\n", Tail(process->log(), 4000)));
  }

  http::CurlTransportOptions transport_options;
  transport_options.proxy = std::string();  // loopback only, whatever the environment says
  absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport =
      http::NewCurlHttpTransport(transport_options);
  if (!transport.ok()) return transport.status();
  while (absl::Now() < deadline) {
    http::HttpRequest health;
    health.url = absl::StrCat(process->base_url(), "/health");
    health.deadline = absl::Now() + absl::Seconds(2);
    absl::StatusOr<http::HttpResponse> response = (*transport)->Fetch(health);
    if (response.ok() && response->status_code == 200) return process;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("llama-server never became healthy:\n", Tail(process->log(), 4000)));
}

void LlamaServerProcess::ReadOutput(int fd) {
  char buffer[4096];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    absl::MutexLock lock(&mu_);
    log_.append(buffer, static_cast<size_t>(n));
    if (listening_port_ == 0) {
      const size_t at = log_.find(kListening.data(), 0, kListening.size());
      if (at != std::string::npos) {
        const size_t start = at + kListening.size();
        size_t end = start;
        while (end < log_.size() && absl::ascii_isdigit(log_[end])) ++end;
        int port = 0;
        if (end < log_.size() && absl::SimpleAtoi(log_.substr(start, end - start), &port)) {
          listening_port_ = port;
        }
      }
    }
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  output_closed_ = true;
}

std::string LlamaServerProcess::base_url() const {
  return absl::StrCat("http://127.0.0.1:", port_);
}

std::string LlamaServerProcess::log() const {
  absl::MutexLock lock(&mu_);
  return log_;
}

void LlamaServerProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
}

LlamaServerProcess::~LlamaServerProcess() {
  Stop();
  if (reader_.joinable()) reader_.join();
}

}  // namespace tiermesh::worker::testing
