// Fuzz target for the worker's parsers of llama-server's other answers (services/worker):
// the non-streamed chat completion, error bodies, and the /slots, /props and /metrics scrapes
// behind GetLoad.
// Input: byte 0 picks the parser (and, for errors, the HTTP status); the rest is the body.
// Invariants: no crash/UB; parsed text is valid UTF-8 (it becomes protobuf strings); a refusal
// says why; the combined load is within its ranges whatever the scrapes held.
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

#include "services/common/text/utf8.h"
#include "services/worker/llama_api.h"
#include "services/worker/llama_load.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace worker = tiermesh::worker;
namespace text = tiermesh::text;

void CheckRefusal(const absl::Status& status) {
  if (status.ok()) return;
  FUZZ_CHECK(!status.message().empty());
  FUZZ_CHECK(text::IsValidUtf8(status.message()));
}

void CheckLoad(const worker::LlamaLoad& load) {
  FUZZ_CHECK(load.slots_total >= 0);
  FUZZ_CHECK(load.slots_busy >= 0);
  FUZZ_CHECK(load.deferred_requests >= 0);
  FUZZ_CHECK(load.kv_cache_usage_ratio >= 0 && load.kv_cache_usage_ratio <= 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  const absl::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (control % 5) {
    case 0: {
      absl::StatusOr<worker::LlamaCompletion> c = worker::ParseChatCompletion(body);
      CheckRefusal(c.status());
      if (c.ok()) {
        FUZZ_CHECK(text::IsValidUtf8(c->content));
        FUZZ_CHECK(text::IsValidUtf8(c->model));
        for (const worker::LlamaToolCall& call : c->tool_calls) {
          FUZZ_CHECK(text::IsValidUtf8(call.id));
          FUZZ_CHECK(text::IsValidUtf8(call.name));
          FUZZ_CHECK(text::IsValidUtf8(call.arguments_json));
        }
      }
      break;
    }
    case 1: {
      const int statuses[] = {400, 404, 500, 501, 503, 429, 413, 200};
      const absl::Status s = worker::LlamaErrorToStatus(statuses[(control >> 3) & 7], body);
      FUZZ_CHECK(!s.ok());
      CheckRefusal(s);
      break;
    }
    default: {
      // All three scrapes from the same bytes, then combined as GetLoad does.
      absl::StatusOr<worker::SlotsSnapshot> slots = worker::ParseSlots(body);
      absl::StatusOr<worker::PropsSnapshot> props = worker::ParseProps(body);
      absl::StatusOr<worker::LlamaMetrics> metrics = worker::ParseLlamaMetrics(body);
      CheckRefusal(slots.status());
      CheckRefusal(props.status());
      CheckRefusal(metrics.status());
      if (slots.ok()) {
        FUZZ_CHECK(slots->busy >= 0 && slots->busy <= slots->total);
      }
      CheckLoad(worker::CombineLoad(slots.ok() ? absl::make_optional(*slots) : absl::nullopt,
                                    props.ok() ? absl::make_optional(*props) : absl::nullopt,
                                    metrics.ok() ? absl::make_optional(*metrics) : absl::nullopt));
      break;
    }
  }
  return 0;
}
