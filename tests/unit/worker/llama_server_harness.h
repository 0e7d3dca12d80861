// Test support for tests that run the real llama-server on the generated test model: finds the
// binary (scripts/provide-llama-server.sh --no-build, so a test never triggers a 15-minute
// build), writes the model, and runs llama-server as a child process (the worker's own
// LlamaProcess: 127.0.0.1, port 0, stopped when the object dies).
//
//   absl::StatusOr<std::string> binary = FindLlamaServerBinary();
//   if (!binary.ok()) GTEST_SKIP() << binary.status();
//   ASSERT_OK_AND_ASSIGN(std::string model, WriteTestModel(::testing::TempDir(), {}));
//   LlamaServerProcess::Options options;
//   options.binary = *binary;
//   options.model_path = model;
//   ASSERT_OK_AND_ASSIGN(auto server, LlamaServerProcess::Start(options));
//   ... http://127.0.0.1:<server->port()>/v1/chat/completions ...
#ifndef TIERMESH_TESTS_UNIT_WORKER_LLAMA_SERVER_HARNESS_H_
#define TIERMESH_TESTS_UNIT_WORKER_LLAMA_SERVER_HARNESS_H_

#include <string>

#include "absl/status/statusor.h"

#include "services/worker/llama_process.h"
#include "tools/make_test_model/test_model.h"

namespace tiermesh::worker::testing {

// The llama-server binary scripts/provide-llama-server.sh --no-build finds ($TIERMESH_LLAMA_SERVER,
// PATH, the cache), located through $TIERMESH_SOURCE_DIR (set by ctest). NOT_FOUND when none.
[[nodiscard]] absl::StatusOr<std::string> FindLlamaServerBinary();

// Writes the test model built from `options` into `dir`; returns its path.
[[nodiscard]] absl::StatusOr<std::string> WriteTestModel(
    const std::string& dir, const test_model::TestModelOptions& options);

using LlamaServerProcess = LlamaProcess;

}  // namespace tiermesh::worker::testing

#endif  // TIERMESH_TESTS_UNIT_WORKER_LLAMA_SERVER_HARNESS_H_
