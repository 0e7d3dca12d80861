#include "services/cloud_proxy/pricing.h"

#include <limits>

#include "absl/numeric/int128.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tiermesh::cloud {
namespace {

constexpr int64_t kNanoPerUsd = 1'000'000'000;
constexpr int64_t kTokensPerMtok = 1'000'000;

absl::Status BadPrice(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("price \"", text, "\" is not a valid USD-per-1M-tokens amount: ", why));
}

double NanoToUsd(int64_t nano) { return static_cast<double>(nano) / kNanoPerUsd; }

}  // namespace

absl::StatusOr<int64_t> ParseUsdPerMtok(absl::string_view text) {
  if (text.empty()) return BadPrice(text, "empty");
  int64_t whole = 0;
  int64_t frac = 0;
  int frac_digits = 0;
  bool seen_dot = false;
  bool any_digit = false;
  for (char c : text) {
    if (c == '.') {
      if (seen_dot) return BadPrice(text, "more than one '.'");
      seen_dot = true;
      continue;
    }
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return BadPrice(text, "only digits and one '.' are allowed");
    }
    any_digit = true;
    const int digit = c - '0';
    if (seen_dot) {
      if (++frac_digits > 9) return BadPrice(text, "more than 9 decimals (finer than 1 nano-USD)");
      frac = frac * 10 + digit;
    } else {
      if (whole > (kMaxNanoUsdPerMtok / kNanoPerUsd)) return BadPrice(text, "too large");
      whole = whole * 10 + digit;
    }
  }
  if (!any_digit) return BadPrice(text, "no digits");
  for (int i = frac_digits; i < 9; ++i) frac *= 10;
  if (whole > kMaxNanoUsdPerMtok / kNanoPerUsd) return BadPrice(text, "too large");
  const int64_t nano = whole * kNanoPerUsd + frac;
  if (nano > kMaxNanoUsdPerMtok) return BadPrice(text, "too large");
  return nano;
}

absl::StatusOr<Price> MakePrice(absl::string_view input, absl::string_view output,
                                absl::string_view cached_input) {
  Price price;
  auto in = ParseUsdPerMtok(input);
  if (!in.ok()) return in.status();
  auto out = ParseUsdPerMtok(output);
  if (!out.ok()) return out.status();
  price.input_nano_per_mtok = *in;
  price.output_nano_per_mtok = *out;
  if (!cached_input.empty()) {
    auto cached = ParseUsdPerMtok(cached_input);
    if (!cached.ok()) return cached.status();
    price.cached_input_nano_per_mtok = *cached;
  }
  return price;
}

absl::StatusOr<tiermesh::v1::Cost> ComputeCost(const tiermesh::v1::Usage& usage, const Price& price,
                                               bool byok) {
  if (usage.prompt_tokens() < 0 || usage.completion_tokens() < 0 ||
      usage.cached_prompt_tokens() < 0) {
    return absl::InvalidArgumentError("usage has a negative token count");
  }
  if (usage.cached_prompt_tokens() > usage.prompt_tokens()) {
    return absl::InvalidArgumentError(
        absl::StrCat("usage has more cached prompt tokens (", usage.cached_prompt_tokens(),
                     ") than prompt tokens (", usage.prompt_tokens(), ")"));
  }
  const int64_t cached_rate = price.cached_input_nano_per_mtok.value_or(price.input_nano_per_mtok);
  const absl::uint128 fresh =
      static_cast<uint64_t>(usage.prompt_tokens() - usage.cached_prompt_tokens());
  const absl::uint128 units = fresh * static_cast<uint64_t>(price.input_nano_per_mtok) +
                              absl::uint128(static_cast<uint64_t>(usage.cached_prompt_tokens())) *
                                  static_cast<uint64_t>(cached_rate) +
                              absl::uint128(static_cast<uint64_t>(usage.completion_tokens())) *
                                  static_cast<uint64_t>(price.output_nano_per_mtok);
  const absl::uint128 nano = (units + (kTokensPerMtok - 1)) / kTokensPerMtok;
  if (nano > absl::uint128(static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
    return absl::OutOfRangeError("cost does not fit in int64 nano-USD");
  }
  tiermesh::v1::Cost cost;
  cost.set_nano_usd(static_cast<int64_t>(absl::Uint128Low64(nano)));
  cost.set_usd(NanoToUsd(cost.nano_usd()));
  cost.set_byok(byok);
  cost.set_estimated(usage.estimated());
  return cost;
}

int64_t OperatorNanoUsd(const tiermesh::v1::Cost& cost) {
  return cost.byok() ? 0 : cost.nano_usd();
}

tiermesh::v1::Price ToProtoPrice(const Price& price) {
  tiermesh::v1::Price p;
  p.set_input_usd_per_mtok(NanoToUsd(price.input_nano_per_mtok));
  p.set_output_usd_per_mtok(NanoToUsd(price.output_nano_per_mtok));
  if (price.cached_input_nano_per_mtok) {
    p.set_cached_input_usd_per_mtok(NanoToUsd(*price.cached_input_nano_per_mtok));
  }
  return p;
}

}  // namespace tiermesh::cloud
