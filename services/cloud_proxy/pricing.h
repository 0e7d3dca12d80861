// Prices and exact cost accounting. Prices are configured as decimal text in
// USD per one million tokens and kept as integer nano-USD per million tokens,
// so no binary floating point ever touches money.
//
//   ASSIGN_OR_RETURN(Price price, MakePrice("3", "15", "0.30"));
//   ASSIGN_OR_RETURN(tiermesh::v1::Cost cost, ComputeCost(usage, price, /*byok=*/false));
//   cost.nano_usd();   // exact
//
// Cost of one generation:
//   fresh_prompt = prompt_tokens - cached_prompt_tokens
//   units        = fresh_prompt * input + cached_prompt_tokens * cached_input
//                + completion_tokens * output          (nano-USD per 1M tokens, 128-bit)
//   nano_usd     = ceil(units / 1,000,000)
// Rounded UP once per request, so the operator's spend is never under-counted
// (at most 1 nano-USD = $0.000000001 above the exact value per request).
// cached_input defaults to the input price when not configured. Anthropic's
// cache-write surcharge is not modelled: cache writes are billed as input.
//
// BYOK (the caller's own provider key): Cost.byok is set and nano_usd is what
// the provider charged the caller, for information; OperatorNanoUsd() is 0.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PRICING_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PRICING_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

#include "tiermesh/v1/common.pb.h"

namespace tiermesh::cloud {

// Largest accepted price: $1,000,000 per 1M tokens ($1 per token).
inline constexpr int64_t kMaxNanoUsdPerMtok = 1'000'000'000'000'000;

struct Price {
  int64_t input_nano_per_mtok = 0;
  int64_t output_nano_per_mtok = 0;
  // Unset: cached prompt tokens cost the input price.
  absl::optional<int64_t> cached_input_nano_per_mtok;

  friend bool operator==(const Price& a, const Price& b) {
    return a.input_nano_per_mtok == b.input_nano_per_mtok &&
           a.output_nano_per_mtok == b.output_nano_per_mtok &&
           a.cached_input_nano_per_mtok == b.cached_input_nano_per_mtok;
  }
};

// "0.15" -> 150000000. Plain decimal only: digits, an optional '.', at most 9
// fractional digits, non-negative, at most kMaxNanoUsdPerMtok. Anything else
// (exponents, signs, "1,5", "") is INVALID_ARGUMENT naming the text.
[[nodiscard]] absl::StatusOr<int64_t> ParseUsdPerMtok(absl::string_view text);

// Builds a Price from three decimal texts; an empty `cached_input` means unset.
[[nodiscard]] absl::StatusOr<Price> MakePrice(absl::string_view input, absl::string_view output,
                                              absl::string_view cached_input = "");

// Exact cost of `usage` (see the header comment). INVALID_ARGUMENT for
// negative counts or cached > prompt; OUT_OF_RANGE when it would overflow.
[[nodiscard]] absl::StatusOr<tiermesh::v1::Cost> ComputeCost(const tiermesh::v1::Usage& usage,
                                                             const Price& price, bool byok);

// What the operator pays: 0 for BYOK, else nano_usd.
int64_t OperatorNanoUsd(const tiermesh::v1::Cost& cost);

// For ListModels (doubles, informational).
tiermesh::v1::Price ToProtoPrice(const Price& price);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PRICING_H_
