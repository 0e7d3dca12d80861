// Fuzz target for the classifier's model-file parser behind its checksum
// (services/classifier/model.h): a file that passes the SHA-256 check (one written by a buggy or
// hostile trainer) must still be refused with an error, never crash or build a broken model.
// Input: byte 0 picks the weight count (bit 0: that of a 2^10-bucket model, else none) and the
// encoding (bit 1: f32); the rest is the JSON header. The harness adds the magic bytes and format
// version (taken from a model it serialises), the sizes, zero weights and a correct checksum.
// Invariants: no crash/UB; a parsed model serialises to bytes that parse to the same weights,
// and Model::Create either refuses it or builds a model that scores an input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "services/classifier/classifier.h"
#include "services/classifier/features.h"
#include "services/classifier/model.h"
#include "services/common/crypto/sha256.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace cls = tiermesh::classifier;

// Magic bytes and format version of a real model file (the first 12 bytes).
const std::string& FilePrefix() {
  static const std::string prefix = [] {
    cls::ModelParams params;
    params.features.hash_bits = 10;
    params.weights.assign(size_t{params.features.num_features()} * cls::kWeightStride, 0.0f);
    absl::StatusOr<std::string> bytes = cls::SerializeModel(params);
    if (!bytes.ok()) std::abort();
    return bytes->substr(0, 12);
  }();
  return prefix;
}

void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const std::string_view header(reinterpret_cast<const char*>(data) + 1, size - 1);
  const uint64_t count =
      (control & 1) ? uint64_t{(1u << 10) + cls::kNumStructural} * cls::kWeightStride : 0;
  const int width = (control & 2) ? 4 : 2;

  std::string file = FilePrefix();
  PutLe(&file, header.size(), 4);
  PutLe(&file, count, 8);
  file.append(header.data(), header.size());
  file.append(count * width, '\0');
  tiermesh::crypto::Sha256 sha;
  sha.Update(file);
  const tiermesh::crypto::Sha256::Digest digest = sha.Finish();
  file.append(reinterpret_cast<const char*>(digest.data()), digest.size());

  absl::StatusOr<cls::ModelParams> params = cls::ParseModel(file);
  if (!params.ok()) {
    FUZZ_CHECK(!params.status().message().empty());
    return 0;
  }
  absl::StatusOr<std::string> again = cls::SerializeModel(*params);
  if (again.ok()) {
    absl::StatusOr<cls::ModelParams> reparsed = cls::ParseModel(*again);
    FUZZ_CHECK(reparsed.ok());
    FUZZ_CHECK(reparsed->weights == params->weights);
  }
  absl::StatusOr<std::shared_ptr<const cls::Model>> model =
      cls::Model::Create(*std::move(params), "fuzz");
  if (model.ok()) {
    cls::ClassifyInput input;
    cls::MessageView m;
    m.content = "What's the weather in Paris tomorrow?";
    input.messages.push_back(m);
    const cls::Classification c = cls::ClassifyWithModel(**model, input, 3);
    FUZZ_CHECK(c.complexity >= 0 && c.complexity <= 1);
  }
  return 0;
}
