// Parsers for llama-server's load endpoints, and their combination into one load figure per
// model. The worker scrapes these on an interval (never on the request path) and answers
// GetLoad from the last result.
//
//   TIERMESH_ASSIGN_OR_RETURN(SlotsSnapshot slots, ParseSlots(slots_body));      // GET /slots
//   TIERMESH_ASSIGN_OR_RETURN(PropsSnapshot props, ParseProps(props_body));      // GET /props
//   TIERMESH_ASSIGN_OR_RETURN(LlamaMetrics metrics, ParseLlamaMetrics(text));    // GET /metrics
//   LlamaLoad load = CombineLoad(slots, props, metrics);
//
// Facts behind the choices (current llama-server): /slots lists every slot with n_ctx,
// is_processing and, once it has served, n_prompt_tokens (the tokens held in its KV cache:
// prompt and generated, kept after the request for prompt caching); /props has total_slots;
// /metrics (only with --metrics) has llamacpp:requests_processing and
// llamacpp:requests_deferred but no KV-cache ratio any more, so KV use comes from /slots.
#ifndef TIERMESH_SERVICES_WORKER_LLAMA_LOAD_H_
#define TIERMESH_SERVICES_WORKER_LLAMA_LOAD_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace tiermesh::worker {

struct SlotsSnapshot {
  int32_t total = 0;
  int32_t busy = 0;            // is_processing
  int64_t context_tokens = 0;  // sum of n_ctx
  int64_t cached_tokens = 0;   // sum of n_prompt_tokens (tokens held in the KV cache)
};

struct PropsSnapshot {
  int32_t total_slots = 0;
  int64_t context_per_slot = 0;  // default_generation_settings.n_ctx (0 when absent)
  std::string model_path;
  std::string build_info;
  bool has_chat_template = false;
};

// One sample of the Prometheus text exposition format.
struct PrometheusSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// The samples of a Prometheus text exposition (version 0.0.4): comments and blank lines are
// skipped, label values unescaped, NaN/+Inf/-Inf understood, timestamps ignored. INTERNAL with
// the line number for a malformed line.
[[nodiscard]] absl::StatusOr<std::vector<PrometheusSample>> ParsePrometheusText(
    absl::string_view text);

struct LlamaMetrics {
  double requests_processing = 0;
  double requests_deferred = 0;
  double prompt_tokens_total = 0;
  double tokens_predicted_total = 0;
  double n_decode_total = 0;
  double predicted_tokens_seconds = 0;  // recent generation speed, tokens/s
};

// GET /slots: a JSON array of slot objects. INTERNAL when malformed. (An HTTP 501 there means
// the server runs with --no-slots; callers then use PropsSnapshot/LlamaMetrics only.)
[[nodiscard]] absl::StatusOr<SlotsSnapshot> ParseSlots(absl::string_view body);

// GET /props.
[[nodiscard]] absl::StatusOr<PropsSnapshot> ParseProps(absl::string_view body);

// GET /metrics: the llamacpp:* series (missing series stay 0; other series are ignored).
[[nodiscard]] absl::StatusOr<LlamaMetrics> ParseLlamaMetrics(absl::string_view text);

struct LlamaLoad {
  int32_t slots_total = 0;
  int32_t slots_busy = 0;
  int32_t deferred_requests = 0;
  float kv_cache_usage_ratio = 0;  // 0..1
  bool has_slots = false;
  bool has_metrics = false;
};

// The best figure from whatever could be scraped: slot counts from /slots (else /props and
// /metrics' requests_processing), deferred from /metrics, KV use from /slots.
[[nodiscard]] LlamaLoad CombineLoad(const absl::optional<SlotsSnapshot>& slots,
                                    const absl::optional<PropsSnapshot>& props,
                                    const absl::optional<LlamaMetrics>& metrics);

}  // namespace tiermesh::worker

#endif  // TIERMESH_SERVICES_WORKER_LLAMA_LOAD_H_
