// Fuzz target: the gemini stream parser (services/cloud_proxy/providers/gemini.h)
// behind the SSE decoder. Invariants: see cloud_stream_fuzz.h.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/cloud_stream_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tiermesh::cloud::fuzz::FuzzOne(tiermesh::cloud::ProviderKind::kGemini, data, size);
}
