// What a finished span is: the plain record that a Span hands to a
// SpanProcessor and that exporters encode (otlp_json.h). No behaviour here.
#ifndef TIERMESH_SERVICES_COMMON_TRACING_SPAN_DATA_H_
#define TIERMESH_SERVICES_COMMON_TRACING_SPAN_DATA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "services/common/tracing/span_context.h"

namespace tiermesh::tracing {

// Values are the OTLP SpanKind enum numbers.
enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };
// Values are the OTLP Status.StatusCode numbers.
enum class SpanStatusCode { kUnset = 0, kOk = 1, kError = 2 };

// An attribute value: string, int64, double or bool. The constructors are
// implicit so that `span.SetAttribute("tokens", 12)` just works; a
// `const char*` is a string (not a bool).
class AttributeValue {
 public:
  using Storage = std::variant<std::string, int64_t, double, bool>;

  AttributeValue() : value_(std::string()) {}
  AttributeValue(const char* s) : value_(std::string(s == nullptr ? "" : s)) {}
  AttributeValue(const std::string& s) : value_(s) {}
  AttributeValue(std::string&& s) : value_(std::move(s)) {}
  AttributeValue(absl::string_view s) : value_(std::string(s)) {}
#ifndef ABSL_USES_STD_STRING_VIEW
  AttributeValue(std::string_view s) : value_(std::string(s)) {}
#endif
  AttributeValue(bool b) : value_(b) {}
  AttributeValue(double d) : value_(d) {}
  AttributeValue(float f) : value_(static_cast<double>(f)) {}
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  AttributeValue(T v) : value_(static_cast<int64_t>(v)) {}  // uint64 above 2^63 wraps

  const Storage& storage() const { return value_; }
  bool operator==(const AttributeValue& o) const { return value_ == o.value_; }

 private:
  Storage value_;
};

using Attributes = std::vector<std::pair<std::string, AttributeValue>>;

struct SpanEvent {
  std::string name;
  absl::Time time;
  Attributes attributes;
};

struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  SpanContext context;    // this span's ids, flags and tracestate
  SpanId parent_span_id;  // invalid for a root span
  absl::Time start_time;
  absl::Time end_time;
  Attributes attributes;
  std::vector<SpanEvent> events;
  SpanStatusCode status_code = SpanStatusCode::kUnset;
  std::string status_message;  // only with kError
  uint32_t dropped_attributes = 0;
  uint32_t dropped_events = 0;
};

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_SPAN_DATA_H_
