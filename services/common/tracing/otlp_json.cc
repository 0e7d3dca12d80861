#include "services/common/tracing/otlp_json.h"

#include <cstdint>
#include <variant>

#include "absl/strings/str_cat.h"

#include "services/common/logging/logger.h"

namespace tiermesh::tracing {
namespace {

// Written by hand rather than through nlohmann::json: the exporter encodes
// every span the mesh produces, and building a DOM first cost ~20 us a span.
// logging::AppendJsonString does the escaping and the UTF-8 repair.
using logging::AppendJsonDouble;
using logging::AppendJsonString;

void AppendKey(std::string* out, absl::string_view key) {
  out->push_back('"');
  out->append(key.data(), key.size());
  out->append("\":");
}

void AppendUnixNanos(std::string* out, absl::Time t) {
  const int64_t nanos = absl::ToUnixNanos(t);
  out->push_back('"');
  absl::StrAppend(out, nanos < 0 ? 0 : nanos);
  out->push_back('"');
}

void AppendValue(std::string* out, const AttributeValue& value) {
  struct Visitor {
    std::string* out;
    void operator()(const std::string& s) const {
      AppendKey(out, "stringValue");
      AppendJsonString(out, s);
    }
    void operator()(int64_t v) const {
      AppendKey(out, "intValue");  // int64 is a decimal string in proto3 JSON
      absl::StrAppend(out, "\"", v, "\"");
    }
    void operator()(double v) const {
      AppendKey(out, "doubleValue");
      AppendJsonDouble(out, v);
    }
    void operator()(bool v) const {
      AppendKey(out, "boolValue");
      out->append(v ? "true" : "false");
    }
  };
  out->push_back('{');
  std::visit(Visitor{out}, value.storage());
  out->push_back('}');
}

void AppendAttributes(std::string* out, const Attributes& attributes) {
  out->push_back('[');
  bool first = true;
  for (const auto& [key, value] : attributes) {
    if (!first) out->push_back(',');
    first = false;
    out->append("{\"key\":");
    AppendJsonString(out, key);
    out->append(",\"value\":");
    AppendValue(out, value);
    out->push_back('}');
  }
  out->push_back(']');
}

void AppendSpan(std::string* out, const SpanData& span) {
  out->append("{\"traceId\":\"");
  out->append(span.context.trace_id.ToHex());
  out->append("\",\"spanId\":\"");
  out->append(span.context.span_id.ToHex());
  out->push_back('"');
  if (span.parent_span_id.IsValid()) {
    out->append(",\"parentSpanId\":\"");
    out->append(span.parent_span_id.ToHex());
    out->push_back('"');
  }
  if (!span.context.trace_state.empty()) {
    out->append(",\"traceState\":");
    AppendJsonString(out, span.context.trace_state);
  }
  out->append(",\"name\":");
  AppendJsonString(out, span.name);
  absl::StrAppend(out, ",\"kind\":", static_cast<int>(span.kind));
  out->append(",\"startTimeUnixNano\":");
  AppendUnixNanos(out, span.start_time);
  out->append(",\"endTimeUnixNano\":");
  AppendUnixNanos(out, span.end_time);
  out->append(",\"attributes\":");
  AppendAttributes(out, span.attributes);
  if (span.dropped_attributes > 0) {
    absl::StrAppend(out, ",\"droppedAttributesCount\":", span.dropped_attributes);
  }
  if (!span.events.empty()) {
    out->append(",\"events\":[");
    bool first = true;
    for (const SpanEvent& event : span.events) {
      if (!first) out->push_back(',');
      first = false;
      out->append("{\"timeUnixNano\":");
      AppendUnixNanos(out, event.time);
      out->append(",\"name\":");
      AppendJsonString(out, event.name);
      out->append(",\"attributes\":");
      AppendAttributes(out, event.attributes);
      out->push_back('}');
    }
    out->push_back(']');
  }
  if (span.dropped_events > 0) {
    absl::StrAppend(out, ",\"droppedEventsCount\":", span.dropped_events);
  }
  absl::StrAppend(out, ",\"status\":{\"code\":", static_cast<int>(span.status_code));
  if (!span.status_message.empty()) {
    out->append(",\"message\":");
    AppendJsonString(out, span.status_message);
  }
  out->append("}}");
}

}  // namespace

std::string EncodeOtlpJson(absl::Span<const SpanData> spans, const Attributes& resource,
                           const InstrumentationScope& scope) {
  std::string out;
  out.reserve(256 + spans.size() * 400);
  out.append("{\"resourceSpans\":[{\"resource\":{\"attributes\":");
  AppendAttributes(&out, resource);
  out.append("},\"scopeSpans\":[{\"scope\":{\"name\":");
  AppendJsonString(&out, scope.name);
  if (!scope.version.empty()) {
    out.append(",\"version\":");
    AppendJsonString(&out, scope.version);
  }
  out.append("},\"spans\":[");
  bool first = true;
  for (const SpanData& span : spans) {
    if (!first) out.push_back(',');
    first = false;
    AppendSpan(&out, span);
  }
  out.append("]}]}]}");
  return out;
}

}  // namespace tiermesh::tracing
