#include "services/common/tracing/id_generator.h"

#include <array>
#include <cstdint>

namespace tiermesh::tracing {
namespace {

template <size_t N>
Id<N> RandomId(absl::BitGen& gen) {
  while (true) {
    std::array<uint8_t, N> bytes;
    for (size_t i = 0; i < N; i += 8) {
      const uint64_t r = absl::Uniform<uint64_t>(gen);
      for (size_t k = 0; k < 8 && i + k < N; ++k) bytes[i + k] = static_cast<uint8_t>(r >> (8 * k));
    }
    Id<N> id(bytes);
    if (id.IsValid()) return id;  // all zeros: about once in 2^64 draws
  }
}

}  // namespace

TraceId RandomIdGenerator::NewTraceId() {
  absl::MutexLock lock(&mu_);
  return RandomId<TraceId::kSize>(gen_);
}

SpanId RandomIdGenerator::NewSpanId() {
  absl::MutexLock lock(&mu_);
  return RandomId<SpanId::kSize>(gen_);
}

}  // namespace tiermesh::tracing
