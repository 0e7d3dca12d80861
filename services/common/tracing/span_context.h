// W3C Trace Context (https://www.w3.org/TR/trace-context/): the ids that
// identify a span across services, and the `traceparent` / `tracestate`
// header formats that carry them.
//
//   absl::StatusOr<SpanContext> parent = ParseTraceparent(
//       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
//   parent->sampled();                  // true
//   FormatTraceparent(*parent);         // the same string back
//
// Parsing follows the spec strictly: lower-case hex only, all-zero ids and
// version ff are invalid, version 00 is exactly 55 characters, and a higher
// version is parsed as 00 when what follows the first four fields starts
// with '-' (forward compatibility). Callers that receive an invalid header
// start a new trace, as the spec says; the error says why, for debug logs.
#ifndef TIERMESH_SERVICES_COMMON_TRACING_SPAN_CONTEXT_H_
#define TIERMESH_SERVICES_COMMON_TRACING_SPAN_CONTEXT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace tiermesh::tracing {

// A fixed-size id; all zeros is the invalid id. TraceId and SpanId are
// distinct types so that they cannot be mixed up.
template <size_t N>
class Id {
 public:
  static constexpr size_t kSize = N;
  Id() = default;  // invalid
  explicit Id(const std::array<uint8_t, N>& bytes) : bytes_(bytes) {}

  // Parses exactly 2*N lower-case hex digits (all zeros included: check
  // IsValid()). nullopt for anything else.
  static absl::optional<Id> FromHex(absl::string_view hex);
  std::string ToHex() const;
  bool IsValid() const {
    for (uint8_t b : bytes_) {
      if (b != 0) return true;
    }
    return false;
  }
  const std::array<uint8_t, N>& bytes() const { return bytes_; }
  bool operator==(const Id& other) const { return bytes_ == other.bytes_; }
  bool operator!=(const Id& other) const { return bytes_ != other.bytes_; }

 private:
  std::array<uint8_t, N> bytes_{};
};
extern template class Id<16>;
extern template class Id<8>;
using TraceId = Id<16>;
using SpanId = Id<8>;

inline constexpr uint8_t kSampledFlag = 0x01;

struct SpanContext {
  TraceId trace_id;
  SpanId span_id;
  uint8_t trace_flags = 0;
  // Vendor data, passed through unchanged (see NormalizeTracestate).
  std::string trace_state;
  // True when it came from another process (extracted from a header).
  bool is_remote = false;

  bool IsValid() const { return trace_id.IsValid() && span_id.IsValid(); }
  bool sampled() const { return (trace_flags & kSampledFlag) != 0; }
};

// Parses a `traceparent` value (surrounding spaces and tabs are ignored).
// InvalidArgument says what is wrong. trace_state is left empty.
[[nodiscard]] absl::StatusOr<SpanContext> ParseTraceparent(absl::string_view value);

// "00-<trace-id>-<span-id>-<flags>"; "" for an invalid context.
[[nodiscard]] std::string FormatTraceparent(const SpanContext& context);

// A `tracestate` value made safe to pass on: list members trimmed of spaces,
// empty members dropped; "" when it is malformed (a member without '=', a
// character outside printable ASCII, more than 32 members) or longer than
// 512 characters, because the spec forbids passing on a tracestate that
// could not be parsed. Several header lines are joined with ',' first.
[[nodiscard]] std::string NormalizeTracestate(absl::string_view value);

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_SPAN_CONTEXT_H_
