// GPU utilization and memory, read from NVIDIA's NVML (libnvidia-ml.so.1) loaded with dlopen at
// run time: the worker has no build-time dependency on CUDA and runs unchanged on machines
// without a GPU, where Open() says why and the worker exports no GPU series.
//
//   absl::StatusOr<std::unique_ptr<GpuProbe>> gpu = OpenNvmlProbe();
//   if (!gpu.ok()) logger.Info("no GPU metrics: " + gpu.status().message());   // once
//   else for (const GpuSample& s : (*gpu)->Sample()) ...
#ifndef TIERMESH_SERVICES_WORKER_GPU_H_
#define TIERMESH_SERVICES_WORKER_GPU_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tiermesh::worker {

struct GpuSample {
  int index = 0;
  std::string name;
  double utilization_ratio = 0;  // 0..1, over NVML's last sample period
  uint64_t memory_used_bytes = 0;
  uint64_t memory_total_bytes = 0;
};

class GpuProbe {
 public:
  virtual ~GpuProbe() = default;
  // One sample per GPU; a GPU whose reading fails is left out (and the error returned only
  // when every GPU failed).
  [[nodiscard]] virtual absl::StatusOr<std::vector<GpuSample>> Sample() = 0;
};

// NOT_FOUND when libnvidia-ml.so.1 cannot be loaded (no driver), UNAVAILABLE when NVML does not
// initialise or sees no GPU. `library` overrides the library name (tests).
[[nodiscard]] absl::StatusOr<std::unique_ptr<GpuProbe>> OpenNvmlProbe(
    const std::string& library = "libnvidia-ml.so.1");

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_GPU_H_
