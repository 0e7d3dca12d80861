// A stand-in for NVIDIA's libnvidia-ml.so.1 with the few entry points the worker's GPU probe
// uses (signatures as in NVIDIA's public nvml.h), reporting two GPUs with fixed readings, so that
// the dlopen path is tested on machines without a GPU:
//   GPU 0: 37% busy, 1 GiB of 16 GiB used;  GPU 1: 80% busy, 12 GiB of 24 GiB used.
// FAKE_NVML_FAIL_INIT=1 in the environment makes nvmlInit_v2 fail (NVML_ERROR_DRIVER_NOT_LOADED).
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {
struct Memory {
  unsigned long long total, free, used;  // NOLINT(runtime/int): NVML's types
};
struct Utilization {
  unsigned int gpu, memory;
};
constexpr unsigned long long kGiB = 1ull << 30;  // NOLINT(runtime/int)
constexpr int kSuccess = 0, kInvalidArgument = 2, kDriverNotLoaded = 9;
}  // namespace

extern "C" {
int nvmlInit_v2() {
  const char* fail = std::getenv("FAKE_NVML_FAIL_INIT");
  return (fail != nullptr && std::strcmp(fail, "1") == 0) ? kDriverNotLoaded : kSuccess;
}
int nvmlShutdown() { return kSuccess; }
const char* nvmlErrorString(int result) {
  return result == kDriverNotLoaded ? "Driver Not Loaded" : "Unknown Error";
}
int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = 2;
  return kSuccess;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index >= 2) return kInvalidArgument;
  *device = reinterpret_cast<void*>(static_cast<uintptr_t>(index + 1));
  return kSuccess;
}
int nvmlDeviceGetUtilizationRates(void* device, Utilization* out) {
  const auto index = reinterpret_cast<uintptr_t>(device) - 1;
  out->gpu = index == 0 ? 37 : 80;
  out->memory = 10;
  return kSuccess;
}
int nvmlDeviceGetMemoryInfo(void* device, Memory* out) {
  const auto index = reinterpret_cast<uintptr_t>(device) - 1;
  out->total = (index == 0 ? 16 : 24) * kGiB;
  out->used = (index == 0 ? 1 : 12) * kGiB;
  out->free = out->total - out->used;
  return kSuccess;
}
int nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  const auto index = reinterpret_cast<uintptr_t>(device) - 1;
  std::strncpy(name, index == 0 ? "Fake GPU A" : "Fake GPU B", length);
  return kSuccess;
}
}
