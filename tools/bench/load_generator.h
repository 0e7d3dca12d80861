// The load generator behind tiermesh-bench: drives RouterService.Chat/ChatStream or
// InferenceService.Generate/GenerateStream with gRPC's callback API (no thread per call), in a
// closed loop (`concurrency` calls always in flight) or an open loop (`rate` calls per second,
// at most `concurrency` in flight; latency then counts from each call's scheduled start, so a
// backlog shows in the figures instead of hiding them: no coordinated omission).
//
//   LoadOptions options;
//   options.target = LoadTarget::kInference;
//   options.model = "cloud-cheap";
//   options.concurrency = 32;
//   options.duration = absl::Seconds(10);
//   options.prompts = {"Hi!"};
//   absl::StatusOr<nlohmann::json> report = RunLoad(options, {channel});
//   // report: SummarizeRun's JSON (bench_stats.h) plus the options that produced it
#ifndef TIERMESH_TOOLS_BENCH_LOAD_GENERATOR_H_
#define TIERMESH_TOOLS_BENCH_LOAD_GENERATOR_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "nlohmann/json.hpp"

namespace tiermesh::bench {

enum class LoadTarget { kRouter, kInference };
enum class LoadMode { kUnary, kStream };

struct LoadOptions {
  LoadTarget target = LoadTarget::kRouter;
  LoadMode mode = LoadMode::kUnary;
  int concurrency = 16;
  double rate = 0;  // calls per second; 0: closed loop
  absl::Duration duration = absl::Seconds(10);
  int64_t max_requests = 0;                         // 0: no limit (duration only)
  absl::Duration warmup = absl::ZeroDuration();     // calls started before are not counted
  absl::Duration call_timeout = absl::Seconds(30);  // each call's deadline
  std::vector<std::string> prompts;                 // used in turn; at least one
  std::string api_key;                              // router: "authorization: Bearer <key>"
  std::string model;                                // inference: the model to call
  int32_t max_tokens = 16;
};

// Runs the load over `channels` (calls are spread round robin; give several channels with
// their own subchannels to use several connections). INVALID_ARGUMENT for bad options.
absl::StatusOr<nlohmann::json> RunLoad(const LoadOptions& options,
                                       const std::vector<std::shared_ptr<grpc::Channel>>& channels);

}  // namespace tiermesh::bench

#endif  // TIERMESH_TOOLS_BENCH_LOAD_GENERATOR_H_
