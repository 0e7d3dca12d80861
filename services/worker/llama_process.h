// One llama-server child process: the worker's "managed" models run in these. It binds
// 127.0.0.1 only, on a port the kernel picks (--port 0; the port is read from its log), with its
// own --api-key, and dies with the worker (PR_SET_PDEATHSIG).
//
//   LlamaProcessOptions options;
//   options.binary = "/usr/local/bin/llama-server";
//   options.model_path = "/models/qwen.gguf";
//   options.api_key = RandomApiKey();
//   TIERMESH_ASSIGN_OR_RETURN(std::unique_ptr<LlamaProcess> process, LlamaProcess::Start(options));
//   LlamaClient client(transport, process->base_url(), options.api_key);
//   ...
//   if (!process->Alive()) ...   // crashed: the supervisor restarts it
//
// Start() returns once /health answers 200 (the model is loaded), or fails with the tail of the
// process's log in the message. Waiting here is on a real process, so it uses real time.
#ifndef TIERMESH_SERVICES_WORKER_LLAMA_PROCESS_H_
#define TIERMESH_SERVICES_WORKER_LLAMA_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tiermesh::worker {

struct LlamaProcessOptions {
  std::string binary;
  std::string model_path;
  int ctx_size = 2048;  // shared by the slots
  int parallel = 2;
  int n_gpu_layers = 0;
  bool metrics = true;
  std::string api_key;  // empty: none
  int threads = 2;
  std::vector<std::string> extra_args;
  absl::Duration startup_timeout = absl::Seconds(60);
  // Polled while waiting for startup; returning true gives up (CANCELLED), e.g. on shutdown.
  std::function<bool()> should_abort;
};

// The command line for `options` (binary first); pure, so that it can be checked in tests.
[[nodiscard]] std::vector<std::string> LlamaServerArgs(const LlamaProcessOptions& options);

// `name` itself when it contains a '/', else the first executable `name` in the ':'-separated
// `path` (execve does not search PATH). FAILED_PRECONDITION saying what was looked for.
[[nodiscard]] absl::StatusOr<std::string> ResolveExecutable(const std::string& name,
                                                            absl::string_view path);

// A random key for a child's --api-key (hex, from /dev/urandom).
[[nodiscard]] std::string RandomApiKey();

class LlamaProcess {
 public:
  using Options = LlamaProcessOptions;

  // Starts llama-server and waits until /health answers 200. The child gets the parent's
  // environment minus LLAMA_ARG_* (llama-server reads its flags from those). UNAVAILABLE (with
  // the log's tail) when it exits or never listens; DEADLINE_EXCEEDED when it never becomes
  // healthy within startup_timeout.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LlamaProcess>> Start(
      const LlamaProcessOptions& options);

  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  ~LlamaProcess();
  LlamaProcess(const LlamaProcess&) = delete;
  LlamaProcess& operator=(const LlamaProcess&) = delete;

  void Stop(absl::Duration grace = absl::Seconds(5));

  // False once the process has exited (reaped here; thread-safe).
  bool Alive();
  // How it ended ("exited with code 1", "killed by signal 9"); empty while alive.
  std::string ExitDescription();

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string base_url() const;
  // The last 64 KiB the process wrote to stdout and stderr.
  std::string log() const;
  std::string LogTail(size_t bytes) const;

 private:
  LlamaProcess() = default;
  void ReadOutput(int fd);

  pid_t pid_ = -1;
  int port_ = 0;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::string log_ ABSL_GUARDED_BY(mu_);
  int listening_port_ ABSL_GUARDED_BY(mu_) = 0;
  bool output_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
  int wait_status_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_LLAMA_PROCESS_H_
