// The classifier's model: the feature configuration, one weight row per
// feature (five task logits + one complexity logit), the complexity
// calibration and the provenance of the training data; plus the versioned
// model-file format that stores it.
//
//   absl::StatusOr<std::shared_ptr<const Model>> m = LoadModelFile("default.tmcl");
//   if (!m.ok()) ...;                       // truncated, tampered, wrong version: clear error
//   FeatureVector fv = (*m)->extractor().Extract(input);
//   Model::Scores s = (*m)->Score(fv);
//   float complexity = (*m)->Calibrate(s.complexity_logit);
//
// File format (all integers little-endian), version 1:
//   offset 0   8 bytes   magic "TMCLASS\0"
//   offset 8   u32       format version (1)
//   offset 12  u32       H = header length in bytes
//   offset 16  u64       N = number of weights
//   offset 24  H bytes   header: a UTF-8 JSON object (feature config, the
//                        structural feature names, task order, weight
//                        encoding, calibration, provenance, trainer report)
//   then       N weights f32 (4 bytes) or f16 (2 bytes), as the header's
//                        "weights.encoding" says; row-major
//                        [num_features][6]: chat, tool, code, math,
//                        reasoning, complexity
//   last       32 bytes  SHA-256 of every byte before it
// A file of any other length, with another magic or version, a checksum
// mismatch, an inconsistent header or a non-finite weight is refused.
// docs: services/classifier/README.md ("Model file").
#ifndef TIERMESH_SERVICES_CLASSIFIER_MODEL_H_
#define TIERMESH_SERVICES_CLASSIFIER_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "services/classifier/features.h"
#include "services/classifier/types.h"

namespace tiermesh::classifier {

inline constexpr char kModelMagic[8] = {'T', 'M', 'C', 'L', 'A', 'S', 'S', '\0'};
inline constexpr uint32_t kModelFormatVersion = 1;
// Bumped whenever feature extraction changes meaning (scaling, hashing,
// tokenisation): a model trained on other features is refused.
inline constexpr uint32_t kFeatureVersion = 1;
// Weights per feature row: kNumTasks task logits, then the complexity logit.
inline constexpr int kWeightStride = kNumTasks + 1;
inline constexpr int kComplexityColumn = kNumTasks;
// In Model::rows() only (not in files): the mean of the task columns.
inline constexpr int kMeanTaskColumn = kNumTasks + 1;

enum class WeightEncoding : uint8_t { kF32, kF16 };

// One training source recorded in the model file.
struct SourceProvenance {
  std::string name;     // "clinc150"
  std::string license;  // "CC BY 3.0"
  std::string role;     // "task" or "complexity"
  int64_t rows = 0;
};

struct ModelInfo {
  std::string name = "tiermesh-classifier";
  std::string created_by;   // the command that produced the file
  std::string data_sha256;  // SHA-256 over the training data as the trainer read it
  std::vector<SourceProvenance> sources;
  std::string attribution;  // where the licence and attribution notices live
  std::string report_json;  // the trainer's evaluation report (a JSON object), may be empty
};

// Everything a model file holds; what the trainer produces.
struct ModelParams {
  FeatureConfig features;
  ModelInfo info;
  // features.num_features() * kWeightStride weights, row-major.
  std::vector<float> weights;
  // complexity = sigmoid(platt_a * complexity_logit + platt_b).
  float platt_a = 1;
  float platt_b = 0;
  WeightEncoding encoding = WeightEncoding::kF32;
};

// Rounds every weight to what `params.encoding` stores, so a trainer can
// evaluate exactly the model it will write.
void RoundWeightsToEncoding(ModelParams* params);

// An immutable, loaded model. Share it with std::shared_ptr<const Model>:
// hot reload swaps the pointer, readers keep theirs until done.
class Model {
 public:
  struct Scores {
    std::array<float, kNumTasks> logits{};
    float complexity_logit = 0;
  };

  // Validates `params` (sizes, finite weights, feature config).
  static absl::StatusOr<std::shared_ptr<const Model>> Create(ModelParams params,
                                                             std::string version);

  const ModelParams& params() const { return params_; }
  const FeatureExtractor& extractor() const { return extractor_; }
  // "<file name>@<first 12 hex digits of the file's SHA-256>".
  const std::string& version() const { return version_; }

  // Scores merged features (FeatureExtractor::Extract).
  Scores Score(const FeatureVector& fv) const;
  // The serving path: one pass over the request (FeatureExtractor::Score).
  Scores ScoreRequest(const ClassifyInput& input, ScoredRequest* scratch) const;
  float Calibrate(float complexity_logit) const;
  // Weight of feature `index` in `column` (0..kWeightStride-1).
  float Weight(uint32_t index, int column) const {
    return rows_[size_t{index} * ScoredRequest::kColumns + column];
  }
  // The weights as rows of ScoredRequest::kColumns floats: the file's six
  // columns, the mean task weight (kMeanTaskColumn), then zero padding.
  const float* rows() const { return rows_.data(); }

 private:
  Model(ModelParams params, std::string version);
  ModelParams params_;
  std::vector<float> rows_;
  FeatureExtractor extractor_;
  std::string version_;
};

// The bytes of a model file.
[[nodiscard]] absl::StatusOr<std::string> SerializeModel(const ModelParams& params);
// Parses and verifies model-file bytes; `sha256_hex` (optional) receives the
// checksum stored in the file.
[[nodiscard]] absl::StatusOr<ModelParams> ParseModel(std::string_view bytes,
                                                     std::string* sha256_hex = nullptr);
// Reads, verifies and builds a model. Errors name the file and the problem.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const Model>> LoadModelFile(const std::string& path);
// Writes atomically (temporary file + rename).
[[nodiscard]] absl::Status WriteModelFile(const ModelParams& params, const std::string& path);

// Reads a whole file (NOT_FOUND / PERMISSION_DENIED / INTERNAL on failure).
[[nodiscard]] absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_MODEL_H_
