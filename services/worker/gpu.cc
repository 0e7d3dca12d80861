#include "services/worker/gpu.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace tiermesh::worker {
namespace {

// The few NVML types and entry points used, declared as in NVIDIA's public nvml.h (the ABI is
// stable: these versioned symbols exist since driver 319).
using NvmlReturn = int;
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlUtilization {
  unsigned int gpu;     // percent of time a kernel ran
  unsigned int memory;  // percent of time memory was read or written
};
struct NvmlMemory {
  unsigned long long total;  // NOLINT(runtime/int): NVML's type
  unsigned long long free;   // NOLINT(runtime/int)
  unsigned long long used;   // NOLINT(runtime/int)
};
constexpr NvmlReturn kNvmlSuccess = 0;

class NvmlProbe final : public GpuProbe {
 public:
  ~NvmlProbe() override {
    if (shutdown_ != nullptr) shutdown_();
    if (handle_ != nullptr) dlclose(handle_);
  }

  static absl::StatusOr<std::unique_ptr<GpuProbe>> Open(const std::string& library) {
    auto probe = std::unique_ptr<NvmlProbe>(new NvmlProbe());
    probe->handle_ = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (probe->handle_ == nullptr) {
      const char* why = dlerror();
      return absl::NotFoundError(
          absl::StrCat("cannot load ", library, " (no NVIDIA driver?): ", why ? why : ""));
    }
    auto* init = reinterpret_cast<NvmlReturn (*)()>(dlsym(probe->handle_, "nvmlInit_v2"));
    probe->shutdown_ = reinterpret_cast<NvmlReturn (*)()>(dlsym(probe->handle_, "nvmlShutdown"));
    probe->count_ = reinterpret_cast<NvmlReturn (*)(unsigned int*)>(
        dlsym(probe->handle_, "nvmlDeviceGetCount_v2"));
    probe->by_index_ = reinterpret_cast<NvmlReturn (*)(unsigned int, NvmlDevice*)>(
        dlsym(probe->handle_, "nvmlDeviceGetHandleByIndex_v2"));
    probe->utilization_ = reinterpret_cast<NvmlReturn (*)(NvmlDevice, NvmlUtilization*)>(
        dlsym(probe->handle_, "nvmlDeviceGetUtilizationRates"));
    probe->memory_ = reinterpret_cast<NvmlReturn (*)(NvmlDevice, NvmlMemory*)>(
        dlsym(probe->handle_, "nvmlDeviceGetMemoryInfo"));
    probe->name_ = reinterpret_cast<NvmlReturn (*)(NvmlDevice, char*, unsigned int)>(
        dlsym(probe->handle_, "nvmlDeviceGetName"));
    probe->error_string_ =
        reinterpret_cast<const char* (*)(NvmlReturn)>(dlsym(probe->handle_, "nvmlErrorString"));
    if (init == nullptr || probe->count_ == nullptr || probe->by_index_ == nullptr ||
        probe->utilization_ == nullptr || probe->memory_ == nullptr) {
      probe->shutdown_ = nullptr;
      return absl::UnavailableError(absl::StrCat(library, " lacks the NVML entry points needed"));
    }
    if (NvmlReturn r = init(); r != kNvmlSuccess) {
      probe->shutdown_ = nullptr;
      return absl::UnavailableError(absl::StrCat("nvmlInit failed: ", probe->ErrorText(r)));
    }
    unsigned int count = 0;
    if (NvmlReturn r = probe->count_(&count); r != kNvmlSuccess || count == 0) {
      return absl::UnavailableError(absl::StrCat(
          "NVML sees no GPU", r != kNvmlSuccess ? absl::StrCat(": ", probe->ErrorText(r)) : ""));
    }
    return std::unique_ptr<GpuProbe>(std::move(probe));
  }

  absl::StatusOr<std::vector<GpuSample>> Sample() override {
    unsigned int count = 0;
    if (NvmlReturn r = count_(&count); r != kNvmlSuccess) {
      return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount: ", ErrorText(r)));
    }
    std::vector<GpuSample> samples;
    std::string last_error;
    for (unsigned int i = 0; i < count; ++i) {
      NvmlDevice device = nullptr;
      NvmlUtilization utilization{};
      NvmlMemory memory{};
      NvmlReturn r = by_index_(i, &device);
      if (r == kNvmlSuccess) r = utilization_(device, &utilization);
      if (r == kNvmlSuccess) r = memory_(device, &memory);
      if (r != kNvmlSuccess) {
        last_error = absl::StrCat("GPU ", i, ": ", ErrorText(r));
        continue;
      }
      GpuSample s;
      s.index = static_cast<int>(i);
      char name[96] = {};
      if (name_ != nullptr && name_(device, name, sizeof(name)) == kNvmlSuccess) s.name = name;
      s.utilization_ratio = utilization.gpu / 100.0;
      s.memory_used_bytes = memory.used;
      s.memory_total_bytes = memory.total;
      samples.push_back(std::move(s));
    }
    if (samples.empty() && count > 0) return absl::UnavailableError(last_error);
    return samples;
  }

 private:
  NvmlProbe() = default;
  std::string ErrorText(NvmlReturn r) const {
    const char* text = error_string_ != nullptr ? error_string_(r) : nullptr;
    return text != nullptr ? std::string(text) : absl::StrCat("NVML error ", r);
  }

  void* handle_ = nullptr;
  NvmlReturn (*shutdown_)() = nullptr;
  NvmlReturn (*count_)(unsigned int*) = nullptr;
  NvmlReturn (*by_index_)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization_)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*memory_)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*name_)(NvmlDevice, char*, unsigned int) = nullptr;
  const char* (*error_string_)(NvmlReturn) = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<GpuProbe>> OpenNvmlProbe(const std::string& library) {
  return NvmlProbe::Open(library);
}

}  // namespace tiermesh::worker
