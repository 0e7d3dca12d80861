// The classifier service's YAML configuration:
//
//   mode: learned                           # or heuristic (the keyword baseline)
//   model: models/classifier/default.tmcl   # learned mode: the model file
//   max_request_bytes: 262144               # text of one request (default 256 KiB)
//   max_reasons: 5                          # task reasons per verdict (0..32)
//   model_poll_interval: 10s                # hot reload check; 0s: never reload
//
//   absl::StatusOr<ClassifierServiceConfig> c =
//       config::LoadConfigFile(path, config::ProcessEnv(), ParseClassifierServiceConfig);
#ifndef TIERMESH_SERVICES_CLASSIFIER_CONFIG_H_
#define TIERMESH_SERVICES_CLASSIFIER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "yaml-cpp/yaml.h"

#include "services/classifier/classifier.h"
#include "services/common/config/schema.h"

namespace tiermesh::classifier {

struct ClassifierServiceConfig {
  ClassifierMode mode = ClassifierMode::kLearned;
  std::string model_path = "models/classifier/default.tmcl";
  int64_t max_request_bytes = static_cast<int64_t>(kDefaultMaxRequestBytes);
  int64_t max_reasons = 5;
  absl::Duration model_poll_interval = absl::Seconds(10);

  ClassifierOptions options() const {
    return {mode, static_cast<size_t>(max_request_bytes), static_cast<int>(max_reasons)};
  }
};

// "learned" / "heuristic" (config::DecodeEnum; found by ADL).
[[nodiscard]] absl::Status Decode(const config::Node& node, ClassifierMode* out);

// Strict: unknown keys, wrong types and out-of-range values are errors that
// name the key and its position. An empty document gives the defaults.
[[nodiscard]] absl::StatusOr<ClassifierServiceConfig> ParseClassifierServiceConfig(
    const YAML::Node& root);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_CONFIG_H_
