#include "services/worker/llama_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "services/common/http/http_client.h"

extern char** environ;

namespace tiermesh::worker {
namespace {

constexpr absl::string_view kListening = "listening on http://127.0.0.1:";
constexpr size_t kMaxLog = 64 * 1024;

std::string Tail(const std::string& text, size_t bytes) {
  return text.size() <= bytes ? text : "..." + text.substr(text.size() - bytes);
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return "ended";
}

}  // namespace

std::vector<std::string> LlamaServerArgs(const LlamaProcessOptions& options) {
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
                                   "--n-gpu-layers",
                                   absl::StrCat(options.n_gpu_layers),
                                   "--no-warmup"};
  if (options.metrics) args.push_back("--metrics");
  if (!options.api_key.empty()) {
    args.push_back("--api-key");
    args.push_back(options.api_key);
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  return args;
}

std::string RandomApiKey() {
  char bytes[24] = {};
  FILE* random = std::fopen("/dev/urandom", "rb");
  if (random != nullptr) {
    const size_t n = std::fread(bytes, 1, sizeof(bytes), random);
    std::fclose(random);
    if (n == sizeof(bytes)) return absl::BytesToHexString(absl::string_view(bytes, sizeof(bytes)));
  }
  // /dev/urandom is always there on Linux; this only keeps the key unguessable enough if not.
  return absl::StrCat(getpid(), "-", absl::ToUnixNanos(absl::Now()));
}

absl::StatusOr<std::string> ResolveExecutable(const std::string& name, absl::string_view path) {
  if (name.empty()) return absl::InvalidArgumentError("llama-server binary not set");
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "llama-server binary ", name, " is not executable: ", std::strerror(errno)));
    }
    return name;
  }
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "llama-server binary '", name, "' is not executable: not found on PATH (set ",
      "llama_server.binary or TIERMESH_LLAMA_SERVER to its path)"));
}

absl::StatusOr<std::unique_ptr<LlamaProcess>> LlamaProcess::Start(
    const LlamaProcessOptions& options) {
  const char* path = std::getenv("PATH");
  absl::StatusOr<std::string> binary = ResolveExecutable(options.binary, path ? path : "");
  if (!binary.ok()) return binary.status();
  LlamaProcessOptions resolved = options;
  resolved.binary = *binary;
  std::vector<std::string> args = LlamaServerArgs(resolved);

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

  std::unique_ptr<LlamaProcess> process(new LlamaProcess());
  process->pid_ = pid;
  process->reader_ = std::thread([p = process.get(), fd = fds[0]] { p->ReadOutput(fd); });

  const absl::Time deadline = absl::Now() + options.startup_timeout;
  auto aborted = [&options] { return options.should_abort && options.should_abort(); };
  while (true) {
    {
      absl::MutexLock lock(&process->mu_);
      // Named outside the lambda: clang resolves the annotation's argument in the enclosing
      // scope, where an init-capture is not visible.
      LlamaProcess* const p = process.get();
      auto ready = [p]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
        return p->listening_port_ != 0 || p->output_closed_;
      };
      process->mu_.AwaitWithDeadline(absl::Condition(&ready),
                                     std::min(deadline, absl::Now() + absl::Milliseconds(100)));
      process->port_ = process->listening_port_;
      if (process->port_ != 0 || process->output_closed_) break;
    }
    if (absl::Now() >= deadline) break;
    if (aborted()) return absl::CancelledError("llama-server start abandoned (shutting down)");
  }
  if (process->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("llama-server (", options.model_path, ") did not start listening: ",
                     process->Alive() ? "still starting" : process->ExitDescription(), "\n",
                     process->LogTail(4000)));
  }

  absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport = http::NewLoopbackHttpTransport();
  if (!transport.ok()) return transport.status();
  while (absl::Now() < deadline) {
    if (!process->Alive()) {
      return absl::UnavailableError(absl::StrCat("llama-server (", options.model_path, ") ",
                                                 process->ExitDescription(), " while loading:\n",
                                                 process->LogTail(4000)));
    }
    if (aborted()) return absl::CancelledError("llama-server start abandoned (shutting down)");
    http::HttpRequest health;
    health.url = absl::StrCat(process->base_url(), "/health");
    health.deadline = std::min(deadline, absl::Now() + absl::Seconds(2));
    absl::StatusOr<http::HttpResponse> response = (*transport)->Fetch(health);
    if (response.ok() && response->status_code == 200) return process;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("llama-server (", options.model_path, ") did not become healthy within ",
                   absl::FormatDuration(options.startup_timeout), ":\n", process->LogTail(4000)));
}

void LlamaProcess::ReadOutput(int fd) {
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
        while (end < log_.size() && absl::ascii_isdigit(static_cast<unsigned char>(log_[end]))) {
          ++end;
        }
        int port = 0;
        if (end < log_.size() && absl::SimpleAtoi(log_.substr(start, end - start), &port)) {
          listening_port_ = port;
        }
      }
    }
    // Bounded: a long-running server logs every request. The port line comes early, and is
    // only looked for until found.
    if (log_.size() > 2 * kMaxLog && listening_port_ != 0) log_.erase(0, log_.size() - kMaxLog);
  }
  close(fd);
  absl::MutexLock lock(&mu_);
  output_closed_ = true;
}

std::string LlamaProcess::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

std::string LlamaProcess::log() const { return LogTail(kMaxLog); }

std::string LlamaProcess::LogTail(size_t bytes) const {
  absl::MutexLock lock(&mu_);
  return Tail(log_, bytes);
}

bool LlamaProcess::Alive() {
  absl::MutexLock lock(&mu_);
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    reaped_ = true;
    wait_status_ = status;
    return false;
  }
  return true;
}

std::string LlamaProcess::ExitDescription() {
  if (Alive()) return "";
  absl::MutexLock lock(&mu_);
  return DescribeWaitStatus(wait_status_);
}

void LlamaProcess::Stop(absl::Duration grace) {
  if (pid_ <= 0 || !Alive()) return;
  kill(pid_, SIGTERM);
  const absl::Time deadline = absl::Now() + grace;
  while (Alive()) {
    if (absl::Now() > deadline) {
      kill(pid_, SIGKILL);
      absl::MutexLock lock(&mu_);
      int status = 0;
      if (!reaped_ && waitpid(pid_, &status, 0) == pid_) {
        reaped_ = true;
        wait_status_ = status;
      }
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

LlamaProcess::~LlamaProcess() {
  Stop();
  if (reader_.joinable()) reader_.join();
}

}  // namespace tiermesh::worker
