// Encodes spans as an OTLP/HTTP JSON ExportTraceServiceRequest body
// (opentelemetry-proto, OTLP/JSON mapping): one resourceSpans entry with the
// resource attributes, one scopeSpans entry, ids as lower-case hex, times as
// unix-nanosecond decimal strings, int attributes as decimal strings, enums
// (kind, status code) as integers. Pure: no I/O, no clock.
//
//   std::string body = EncodeOtlpJson(
//       spans, {{"service.name", "router"}}, {"tiermesh", "0.1.0"});
//   // {"resourceSpans":[{"resource":{"attributes":[...]},"scopeSpans":[{"scope":
//   //   {"name":"tiermesh","version":"0.1.0"},"spans":[{"traceId":"4bf9...",...}]}]}]}
#ifndef TIERMESH_SERVICES_COMMON_TRACING_OTLP_JSON_H_
#define TIERMESH_SERVICES_COMMON_TRACING_OTLP_JSON_H_

#include <string>

#include "absl/types/span.h"

#include "services/common/tracing/span_data.h"

namespace tiermesh::tracing {

struct InstrumentationScope {
  std::string name = "tiermesh";
  std::string version;
};

// Invalid UTF-8 in names and values becomes U+FFFD; non-finite doubles are
// written as "NaN" / "Infinity" / "-Infinity" (the proto3 JSON spelling).
[[nodiscard]] std::string EncodeOtlpJson(absl::Span<const SpanData> spans,
                                         const Attributes& resource,
                                         const InstrumentationScope& scope = {});

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_OTLP_JSON_H_
