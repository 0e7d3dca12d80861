#include "services/common/tracing/span_context.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace tiermesh::tracing {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr size_t kVersion00Length = 55;  // 2 + 1 + 32 + 1 + 16 + 1 + 2
constexpr size_t kMaxTracestateLength = 512;
constexpr size_t kMaxTracestateMembers = 32;

// 0..15 for a lower-case hex digit, -1 otherwise.
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Checks a field of lower-case hex and says what is wrong with it.
absl::Status CheckHex(absl::string_view field, absl::string_view name) {
  for (char c : field) {
    if (HexValue(c) >= 0) continue;
    if (c >= 'A' && c <= 'F') {
      return absl::InvalidArgumentError(absl::StrCat(
          "traceparent: ", name, " has upper-case hex (the spec allows lower case only)"));
    }
    return absl::InvalidArgumentError(absl::StrCat("traceparent: ", name, " is not hex"));
  }
  return absl::OkStatus();
}

}  // namespace

template <size_t N>
absl::optional<Id<N>> Id<N>::FromHex(absl::string_view hex) {
  if (hex.size() != 2 * N) return absl::nullopt;
  std::array<uint8_t, N> bytes{};
  for (size_t i = 0; i < N; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::nullopt;
    bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return Id<N>(bytes);
}

template <size_t N>
std::string Id<N>::ToHex() const {
  std::string out(2 * N, '0');
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kHexDigits[bytes_[i] >> 4];
    out[2 * i + 1] = kHexDigits[bytes_[i] & 0xF];
  }
  return out;
}

template class Id<16>;
template class Id<8>;

absl::StatusOr<SpanContext> ParseTraceparent(absl::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.size() < kVersion00Length) {
    return absl::InvalidArgumentError(absl::StrCat(
        "traceparent: expected at least ", kVersion00Length, " characters, got ", value.size()));
  }
  const absl::string_view version = value.substr(0, 2);
  if (absl::Status s = CheckHex(version, "version"); !s.ok()) return s;
  if (version == "ff") return absl::InvalidArgumentError("traceparent: version ff is forbidden");
  if (version == "00" && value.size() != kVersion00Length) {
    return absl::InvalidArgumentError(absl::StrCat("traceparent: version 00 must be exactly ",
                                                   kVersion00Length, " characters, got ",
                                                   value.size()));
  }
  if (value.size() > kVersion00Length && value[kVersion00Length] != '-') {
    return absl::InvalidArgumentError(
        "traceparent: a future version must continue with '-' after the flags");
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return absl::InvalidArgumentError(
        "traceparent: expected version-traceid-parentid-flags separated by '-'");
  }
  const absl::string_view trace_hex = value.substr(3, 32);
  const absl::string_view span_hex = value.substr(36, 16);
  const absl::string_view flags_hex = value.substr(53, 2);
  if (absl::Status s = CheckHex(trace_hex, "trace-id"); !s.ok()) return s;
  if (absl::Status s = CheckHex(span_hex, "parent-id"); !s.ok()) return s;
  if (absl::Status s = CheckHex(flags_hex, "trace-flags"); !s.ok()) return s;
  SpanContext context;
  context.trace_id = *TraceId::FromHex(trace_hex);
  context.span_id = *SpanId::FromHex(span_hex);
  if (!context.trace_id.IsValid()) {
    return absl::InvalidArgumentError("traceparent: trace-id is all zeros");
  }
  if (!context.span_id.IsValid()) {
    return absl::InvalidArgumentError("traceparent: parent-id is all zeros");
  }
  context.trace_flags = static_cast<uint8_t>(HexValue(flags_hex[0]) << 4 | HexValue(flags_hex[1]));
  context.is_remote = true;
  return context;
}

std::string FormatTraceparent(const SpanContext& context) {
  if (!context.IsValid()) return "";
  std::string flags(2, '0');
  flags[0] = kHexDigits[context.trace_flags >> 4];
  flags[1] = kHexDigits[context.trace_flags & 0xF];
  return absl::StrCat("00-", context.trace_id.ToHex(), "-", context.span_id.ToHex(), "-", flags);
}

std::string NormalizeTracestate(absl::string_view value) {
  std::vector<std::string> members;
  for (absl::string_view member : absl::StrSplit(value, ',')) {
    member = absl::StripAsciiWhitespace(member);
    if (member.empty()) continue;
    const size_t eq = member.find('=');
    if (eq == 0 || eq == absl::string_view::npos || eq + 1 == member.size()) return "";
    for (char c : member) {
      if (c < 0x20 || c > 0x7E) return "";
    }
    members.emplace_back(member);
    if (members.size() > kMaxTracestateMembers) return "";
  }
  std::string joined = absl::StrJoin(members, ",");
  if (joined.size() > kMaxTracestateLength) return "";
  return joined;
}

}  // namespace tiermesh::tracing
