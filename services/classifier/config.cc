#include "services/classifier/config.h"

namespace tiermesh::classifier {

absl::Status Decode(const config::Node& node, ClassifierMode* out) {
  return config::DecodeEnum(
      node, out,
      {{"learned", ClassifierMode::kLearned}, {"heuristic", ClassifierMode::kHeuristic}});
}

absl::StatusOr<ClassifierServiceConfig> ParseClassifierServiceConfig(const YAML::Node& root) {
  ClassifierServiceConfig c;
  config::ObjectReader r(root);
  r.Optional("mode", &c.mode);
  r.Optional("model", &c.model_path, config::NonEmpty());
  // 1 KiB .. 64 MiB: below that nothing useful fits, above it gRPC's own
  // message limits and memory are the problem.
  r.Optional("max_request_bytes", &c.max_request_bytes,
             config::InRange<int64_t>(1024, int64_t{64} << 20));
  r.Optional("max_reasons", &c.max_reasons, config::InRange<int64_t>(0, 32));
  r.Optional("model_poll_interval", &c.model_poll_interval,
             config::InRange(absl::ZeroDuration(), absl::Hours(24)));
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  return c;
}

}  // namespace tiermesh::classifier
