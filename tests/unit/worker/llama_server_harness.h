// Test support for tests that run the real llama-server on the generated test model: finds the
// binary (scripts/provide-llama-server.sh --no-build, so a test never triggers a 15-minute
// build), writes the model, and runs llama-server as a child process on 127.0.0.1 with port 0
// (its log says which port it got), stopping it when the object dies.
//
//   absl::StatusOr<std::string> binary = FindLlamaServerBinary();
//   if (!binary.ok()) GTEST_SKIP() << binary.status();
//   ASSERT_OK_AND_ASSIGN(std::string model, WriteTestModel(::testing::TempDir(), {}));
//   LlamaServerProcess::Options options;
//   options.binary = *binary;
//   options.model_path = model;
//   ASSERT_OK_AND_ASSIGN(auto server, LlamaServerProcess::Start(options));
//   ... http://127.0.0.1:<server->port()>/v1/chat/completions ...
//
// Waiting here is on a real process, so it uses real time (bounded by startup_timeout).
#ifndef TIERMESH_TESTS_UNIT_WORKER_LLAMA_SERVER_HARNESS_H_
#define TIERMESH_TESTS_UNIT_WORKER_LLAMA_SERVER_HARNESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "tools/make_test_model/test_model.h"

namespace tiermesh::worker::testing {

// The llama-server binary scripts/provide-llama-server.sh --no-build finds ($TIERMESH_LLAMA_SERVER,
// PATH, the cache), located through $TIERMESH_SOURCE_DIR (set by ctest). NOT_FOUND when none.
[[nodiscard]] absl::StatusOr<std::string> FindLlamaServerBinary();

// Writes the test model built from `options` into `dir`; returns its path.
[[nodiscard]] absl::StatusOr<std::string> WriteTestModel(
    const std::string& dir, const test_model::TestModelOptions& options);

class LlamaServerProcess {
 public:
  struct Options {
    std::string binary;
    std::string model_path;
    int ctx_size = 2048;  // shared by the slots
    int parallel = 2;
    bool metrics = true;
    std::string api_key;  // empty: none
    int threads = 2;
    std::vector<std::string> extra_args;
    absl::Duration startup_timeout = absl::Seconds(60);
  };

  // Starts llama-server and waits until /health answers 200. The child gets the parent's
  // environment minus LLAMA_ARG_* (llama-server reads its flags from those) so that tests are
  // hermetic, and dies with the test process.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LlamaServerProcess>> Start(
      const Options& options);

  // SIGTERM, then SIGKILL if it has not exited within 5 s.
  ~LlamaServerProcess();

  LlamaServerProcess(const LlamaServerProcess&) = delete;
  LlamaServerProcess& operator=(const LlamaServerProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string base_url() const;
  // Everything the process wrote to stdout and stderr so far.
  std::string log() const;

 private:
  LlamaServerProcess() = default;
  void ReadOutput(int fd);
  void Stop();

  pid_t pid_ = -1;
  int port_ = 0;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::string log_ ABSL_GUARDED_BY(mu_);
  int listening_port_ ABSL_GUARDED_BY(mu_) = 0;
  bool output_closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace tiermesh::worker::testing

#endif  // TIERMESH_TESTS_UNIT_WORKER_LLAMA_SERVER_HARNESS_H_
