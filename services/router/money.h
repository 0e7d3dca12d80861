// Exact money arithmetic for routing decisions and budgets. Amounts are
// integer nano-USD; prices and caps are configured as decimal text and never
// pass through binary floating point.
//
//   absl::StatusOr<NanoUsd> cap = ParseUsd("12.50");          // 12'500'000'000
//   Price price{/*input*/ 150'000'000, /*output*/ 600'000'000};  // $0.15 / $0.60 per 1M tokens
//   NanoUsd worst = WorstCaseNanoUsd(price, /*prompt_tokens=*/1200, /*max_tokens=*/512);
//   FormatUsd(worst);                                           // "$0.0004872"
//
// Costs round UP to the next nano-USD (once per amount), so a reservation is
// never smaller than what the call can really cost.
#ifndef TIERMESH_SERVICES_ROUTER_MONEY_H_
#define TIERMESH_SERVICES_ROUTER_MONEY_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "services/common/config/schema.h"
#include "services/router/types.h"

namespace tiermesh::router {

// The largest amount accepted anywhere in a policy: $1,000,000,000.
inline constexpr NanoUsd kMaxConfiguredNanoUsd = kNanoPerUsd * 1'000'000'000;

// Prices of one model, nano-USD per one million tokens.
struct Price {
  NanoUsd input_nano_per_mtok = 0;
  NanoUsd output_nano_per_mtok = 0;

  bool IsFree() const { return input_nano_per_mtok == 0 && output_nano_per_mtok == 0; }
  friend bool operator==(const Price& a, const Price& b) {
    return a.input_nano_per_mtok == b.input_nano_per_mtok &&
           a.output_nano_per_mtok == b.output_nano_per_mtok;
  }
};

// A configured USD amount (a YAML number or string such as 0.15 or "12.50").
struct Money {
  NanoUsd nano_usd = 0;
  friend bool operator==(const Money& a, const Money& b) { return a.nano_usd == b.nano_usd; }
};

// "0.15" -> 150'000'000. Plain non-negative decimal: digits, an optional '.'
// and at most 9 fractional digits, at most kMaxConfiguredNanoUsd. Anything
// else ("-1", "1e3", "1,5", "", "$3") is INVALID_ARGUMENT quoting the text.
[[nodiscard]] absl::StatusOr<NanoUsd> ParseUsd(absl::string_view text);

// ceil(tokens * nano_per_mtok / 1e6); tokens below 0 count as 0; saturates at
// INT64_MAX instead of overflowing.
NanoUsd TokenCostNanoUsd(int64_t tokens, NanoUsd nano_per_mtok);

// The most a call can cost: prompt_tokens at the input price plus max_tokens
// at the output price, rounded up once. Saturates instead of overflowing.
NanoUsd WorstCaseNanoUsd(const Price& price, int64_t prompt_tokens, int64_t max_tokens);

// Saturating a + b for non-negative amounts.
NanoUsd AddNanoUsd(NanoUsd a, NanoUsd b);

// "$0", "$0.0004872", "$12.50": exact, trailing zeros trimmed (at least two
// decimals once there is a fraction). For reasons and logs.
std::string FormatUsd(NanoUsd nano_usd);

// nano-USD as a double, for tiermesh.v1.Cost.usd and metrics only.
double NanoToUsd(NanoUsd nano_usd);

// Config decoder for Money (ParseUsd on the scalar text).
[[nodiscard]] absl::Status Decode(const config::Node& node, Money* out);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_MONEY_H_
