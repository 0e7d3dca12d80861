// Fuzz target for what the cloud-proxy makes of a provider's non-streamed answer
// (services/cloud_proxy): each adapter's ParseResponse on a 2xx body, and the error mapping of
// any other status (MapError: the provider's error object, Retry-After).
// Input: byte 0 picks the provider (bits 0-1), the HTTP status (bits 2-5) and whether the first
// line of the rest is sent as a Retry-After header (bit 6); the rest is the body.
// Invariants: no crash/UB; a parsed answer has valid UTF-8 in every string and consistent usage;
// a refused answer and every mapped error say why, in valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "services/cloud_proxy/http_types.h"
#include "services/cloud_proxy/provider.h"
#include "services/common/text/utf8.h"
#include "tests/fuzz/cloud_stream_fuzz.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace cloud = tiermesh::cloud;
namespace text = tiermesh::text;

constexpr int kStatuses[16] = {200, 201, 400, 401, 402, 403, 404, 408,
                               409, 413, 422, 429, 500, 503, 504, 529};

void CheckError(const absl::Status& status) {
  FUZZ_CHECK(!status.ok());
  FUZZ_CHECK(!status.message().empty());
  FUZZ_CHECK(text::IsValidUtf8(status.message()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const cloud::ProviderKind kinds[3] = {cloud::ProviderKind::kOpenAiCompatible,
                                        cloud::ProviderKind::kAnthropic,
                                        cloud::ProviderKind::kGemini};
  cloud::ProviderConfig config;
  config.name = "fuzz";
  config.kind = kinds[(control & 3) % 3];
  std::unique_ptr<cloud::ProviderAdapter> adapter = cloud::MakeProviderAdapter(config);

  cloud::HttpResponse response;
  response.status = kStatuses[(control >> 2) & 15];
  response.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (control & 0x40) {
    response.headers.emplace_back("Retry-After",
                                  response.body.substr(0, response.body.find('\n')));
  }
  const absl::Time now = absl::FromUnixSeconds(1767225600);  // 2026-01-01

  if (response.status < 300) {
    absl::StatusOr<tiermesh::v1::GenerateResponse> parsed =
        adapter->ParseResponse(response, cloud::ParseContext{17, now});
    if (!parsed.ok()) {
      CheckError(parsed.status());
      return 0;
    }
    const tiermesh::v1::ChatMessage& m = parsed->message();
    FUZZ_CHECK(text::IsValidUtf8(m.content()));
    for (const tiermesh::v1::ToolCall& call : m.tool_calls()) {
      FUZZ_CHECK(text::IsValidUtf8(call.id()));
      FUZZ_CHECK(text::IsValidUtf8(call.name()));
      FUZZ_CHECK(text::IsValidUtf8(call.arguments_json()));
    }
    FUZZ_CHECK(text::IsValidUtf8(parsed->model()));
    cloud::fuzz::CheckUsage(parsed->usage());
    return 0;
  }
  CheckError(adapter->MapError(response, now));
  return 0;
}
