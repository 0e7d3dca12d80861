#include "services/router/money.h"

#include <limits>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tiermesh::router {
namespace {

constexpr NanoUsd kMaxNano = std::numeric_limits<NanoUsd>::max();

NanoUsd Saturate(absl::uint128 v) {
  if (v > absl::uint128(static_cast<uint64_t>(kMaxNano))) return kMaxNano;
  return static_cast<NanoUsd>(absl::Uint128Low64(v));
}

absl::Status BadAmount(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a USD amount (", why, "); write e.g. 0.15 or 12.50"));
}

}  // namespace

absl::StatusOr<NanoUsd> ParseUsd(absl::string_view text) {
  if (text.empty()) return BadAmount(text, "empty");
  const size_t dot = text.find('.');
  absl::string_view whole = text.substr(0, dot);
  absl::string_view frac = dot == absl::string_view::npos ? "" : text.substr(dot + 1);
  if (whole.empty() && frac.empty()) return BadAmount(text, "no digits");
  if (dot != absl::string_view::npos && frac.empty()) return BadAmount(text, "no digits after '.'");
  if (frac.size() > 9) return BadAmount(text, "more than 9 decimals");
  for (absl::string_view part : {whole, frac}) {
    for (char c : part) {
      if (c < '0' || c > '9') return BadAmount(text, "only digits and one '.' are allowed");
    }
  }
  // Whole dollars are at most 10 digits for the limit below; longer is out of range.
  if (whole.size() > 10) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is above the largest accepted amount $1000000000"));
  }
  NanoUsd nano = 0;
  for (char c : whole) nano = nano * 10 + (c - '0');
  nano *= kNanoPerUsd;
  NanoUsd frac_nano = 0;
  for (size_t i = 0; i < 9; ++i) {
    frac_nano = frac_nano * 10 + (i < frac.size() ? frac[i] - '0' : 0);
  }
  nano += frac_nano;
  if (nano > kMaxConfiguredNanoUsd) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is above the largest accepted amount $1000000000"));
  }
  return nano;
}

NanoUsd TokenCostNanoUsd(int64_t tokens, NanoUsd nano_per_mtok) {
  if (tokens <= 0 || nano_per_mtok <= 0) return 0;
  const absl::uint128 units =
      absl::uint128(static_cast<uint64_t>(tokens)) * static_cast<uint64_t>(nano_per_mtok);
  return Saturate((units + 999'999) / 1'000'000);
}

NanoUsd WorstCaseNanoUsd(const Price& price, int64_t prompt_tokens, int64_t max_tokens) {
  absl::uint128 units = 0;
  if (prompt_tokens > 0 && price.input_nano_per_mtok > 0) {
    units += absl::uint128(static_cast<uint64_t>(prompt_tokens)) *
             static_cast<uint64_t>(price.input_nano_per_mtok);
  }
  if (max_tokens > 0 && price.output_nano_per_mtok > 0) {
    units += absl::uint128(static_cast<uint64_t>(max_tokens)) *
             static_cast<uint64_t>(price.output_nano_per_mtok);
  }
  return Saturate((units + 999'999) / 1'000'000);
}

NanoUsd AddNanoUsd(NanoUsd a, NanoUsd b) {
  if (a < 0) a = 0;
  if (b < 0) b = 0;
  return a > kMaxNano - b ? kMaxNano : a + b;
}

std::string FormatUsd(NanoUsd nano_usd) {
  const bool negative = nano_usd < 0;
  const uint64_t abs_nano =
      negative ? 0 - static_cast<uint64_t>(nano_usd) : static_cast<uint64_t>(nano_usd);
  const uint64_t whole = abs_nano / kNanoPerUsd;
  const uint64_t frac = abs_nano % kNanoPerUsd;
  std::string out = absl::StrCat(negative ? "-$" : "$", whole);
  if (frac != 0) {
    std::string digits = absl::StrFormat("%09d", frac);
    while (digits.size() > 2 && digits.back() == '0') digits.pop_back();
    absl::StrAppend(&out, ".", digits);
  }
  return out;
}

double NanoToUsd(NanoUsd nano_usd) { return static_cast<double>(nano_usd) / 1e9; }

absl::Status Decode(const config::Node& node, Money* out) {
  if (!node.IsScalar()) {
    return node.Error(absl::StrCat("expected a USD amount, got ", node.KindName()));
  }
  absl::StatusOr<NanoUsd> nano = ParseUsd(node.Scalar());
  if (!nano.ok()) return node.Error(nano.status().message());
  out->nano_usd = *nano;
  return absl::OkStatus();
}

}  // namespace tiermesh::router
