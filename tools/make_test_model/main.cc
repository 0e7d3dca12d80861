// tiermesh-make-test-model: writes the project's tiny GGUF test model (see test_model.h).
//
//   tiermesh-make-test-model --output /tmp/tiny.gguf [--seed 7] [--layers 2] [--embd 64]
//       [--heads 4] [--kv_heads 4] [--ff 128] [--ctx 4096] [--type f32|f16]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"

#include "tools/make_test_model/test_model.h"

ABSL_FLAG(std::string, output, "", "Where to write the GGUF file (required).");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the random weights; the same seed gives the same file.");
ABSL_FLAG(uint32_t, layers, 2, "Number of transformer blocks.");
ABSL_FLAG(uint32_t, embd, 64, "Embedding width (a multiple of --heads).");
ABSL_FLAG(uint32_t, heads, 4, "Attention heads.");
ABSL_FLAG(uint32_t, kv_heads, 4, "Key/value heads (divides --heads).");
ABSL_FLAG(uint32_t, ff, 128, "Feed-forward width.");
ABSL_FLAG(uint32_t, ctx, 4096, "Training context length stored in the model.");
ABSL_FLAG(std::string, type, "f32", "Weight type of the matrices: f32 or f16.");

namespace {

// Writes next to the target and renames, so that a reader never sees a half-written model.
bool WriteFileAtomically(const std::string& path, const std::string& bytes, std::string* error) {
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      *error = absl::StrCat("cannot write ", temp);
      std::remove(temp.c_str());
      return false;
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    *error = absl::StrCat("cannot rename ", temp, " to ", path);
    std::remove(temp.c_str());
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes a tiny GGUF model (llama architecture, random weights, byte vocabulary).\n"
      "  tiermesh-make-test-model --output FILE.gguf [--seed N] [--layers N] [--embd N] ...");
  const std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr, "tiermesh-make-test-model: unexpected argument '%s'\n", positional[1]);
    return 2;
  }
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output.empty()) {
    std::fprintf(stderr, "tiermesh-make-test-model: --output is required\n");
    return 2;
  }
  tiermesh::test_model::TestModelOptions options;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.n_layer = absl::GetFlag(FLAGS_layers);
  options.n_embd = absl::GetFlag(FLAGS_embd);
  options.n_head = absl::GetFlag(FLAGS_heads);
  options.n_head_kv = absl::GetFlag(FLAGS_kv_heads);
  options.n_ff = absl::GetFlag(FLAGS_ff);
  options.n_ctx_train = absl::GetFlag(FLAGS_ctx);
  const std::string type = absl::GetFlag(FLAGS_type);
  if (type == "f32") {
    options.weight_type = tiermesh::test_model::WeightType::kF32;
  } else if (type == "f16") {
    options.weight_type = tiermesh::test_model::WeightType::kF16;
  } else {
    std::fprintf(stderr, "tiermesh-make-test-model: --type must be f32 or f16, not '%s'\n",
                 type.c_str());
    return 2;
  }

  absl::StatusOr<std::string> model = tiermesh::test_model::BuildTestModel(options);
  if (!model.ok()) {
    std::fprintf(stderr, "tiermesh-make-test-model: %s\n", model.status().ToString().c_str());
    return 2;
  }
  std::string error;
  if (!WriteFileAtomically(output, *model, &error)) {
    std::fprintf(stderr, "tiermesh-make-test-model: %s\n", error.c_str());
    return 1;
  }
  std::printf("%s: %zu bytes\n", output.c_str(), model->size());
  return 0;
}
