#include "tests/unit/worker/llama_server_harness.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tiermesh::worker::testing {

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

}  // namespace tiermesh::worker::testing
