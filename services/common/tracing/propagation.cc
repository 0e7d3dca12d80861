#include "services/common/tracing/propagation.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

namespace tiermesh::tracing {
namespace {

absl::optional<SpanContext> ExtractFromValues(const std::vector<absl::string_view>& traceparents,
                                              const std::vector<absl::string_view>& tracestates) {
  if (traceparents.size() != 1) return absl::nullopt;  // none, or ambiguous
  absl::StatusOr<SpanContext> context = ParseTraceparent(traceparents.front());
  if (!context.ok()) return absl::nullopt;
  context->trace_state = NormalizeTracestate(absl::StrJoin(tracestates, ","));
  return *std::move(context);
}

template <typename Headers, typename NameOf, typename ValueOf>
absl::optional<SpanContext> ExtractFromHeaders(const Headers& headers, NameOf name_of,
                                               ValueOf value_of) {
  std::vector<absl::string_view> traceparents;
  std::vector<absl::string_view> tracestates;
  for (const auto& header : headers) {
    if (absl::EqualsIgnoreCase(name_of(header), kTraceparentHeader)) {
      traceparents.push_back(value_of(header));
    } else if (absl::EqualsIgnoreCase(name_of(header), kTracestateHeader)) {
      tracestates.push_back(value_of(header));
    }
  }
  return ExtractFromValues(traceparents, tracestates);
}

template <typename Headers, typename NameOf>
void RemoveTraceHeaders(Headers* headers, NameOf name_of) {
  headers->erase(std::remove_if(headers->begin(), headers->end(),
                                [&](const auto& header) {
                                  return absl::EqualsIgnoreCase(name_of(header),
                                                                kTraceparentHeader) ||
                                         absl::EqualsIgnoreCase(name_of(header), kTracestateHeader);
                                }),
                 headers->end());
}

// "host" of "scheme://user:pw@host:port/path?q".
std::string HostOf(absl::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end != absl::string_view::npos) url.remove_prefix(scheme_end + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  const size_t at = url.rfind('@');
  if (at != absl::string_view::npos) url.remove_prefix(at + 1);
  if (absl::StartsWith(url, "[")) return std::string(url.substr(0, url.find(']') + 1));  // IPv6
  return std::string(url.substr(0, url.find(':')));
}

}  // namespace

void InjectGrpc(const SpanContext& context, grpc::ClientContext* client_context) {
  if (!context.IsValid()) return;
  client_context->AddMetadata(std::string(kTraceparentHeader), FormatTraceparent(context));
  if (!context.trace_state.empty()) {
    client_context->AddMetadata(std::string(kTracestateHeader), context.trace_state);
  }
}

absl::optional<SpanContext> ExtractGrpc(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  const auto view = [](const grpc::string_ref& ref) {
    return absl::string_view(ref.data(), ref.size());
  };
  std::vector<absl::string_view> traceparents;
  std::vector<absl::string_view> tracestates;
  for (auto [it, end] = metadata.equal_range(
           grpc::string_ref(kTraceparentHeader.data(), kTraceparentHeader.size()));
       it != end; ++it) {
    traceparents.push_back(view(it->second));
  }
  for (auto [it, end] = metadata.equal_range(
           grpc::string_ref(kTracestateHeader.data(), kTracestateHeader.size()));
       it != end; ++it) {
    tracestates.push_back(view(it->second));
  }
  return ExtractFromValues(traceparents, tracestates);
}

absl::optional<SpanContext> ExtractGrpc(const grpc::ServerContextBase& context) {
  return ExtractGrpc(context.client_metadata());
}

void InjectHttp(const SpanContext& context, http::HttpHeaders* headers) {
  const auto name_of = [](const http::HttpHeader& h) { return absl::string_view(h.name); };
  RemoveTraceHeaders(headers, name_of);
  if (!context.IsValid()) return;
  headers->push_back({std::string(kTraceparentHeader), FormatTraceparent(context)});
  if (!context.trace_state.empty()) {
    headers->push_back({std::string(kTracestateHeader), context.trace_state});
  }
}

absl::optional<SpanContext> ExtractHttp(const http::HttpHeaders& headers) {
  return ExtractFromHeaders(
      headers, [](const http::HttpHeader& h) { return absl::string_view(h.name); },
      [](const http::HttpHeader& h) { return absl::string_view(h.value); });
}

void InjectHttp(const SpanContext& context, HeaderPairs* headers) {
  const auto name_of = [](const std::pair<std::string, std::string>& h) {
    return absl::string_view(h.first);
  };
  RemoveTraceHeaders(headers, name_of);
  if (!context.IsValid()) return;
  headers->emplace_back(std::string(kTraceparentHeader), FormatTraceparent(context));
  if (!context.trace_state.empty()) {
    headers->emplace_back(std::string(kTracestateHeader), context.trace_state);
  }
}

absl::optional<SpanContext> ExtractHttp(const HeaderPairs& headers) {
  return ExtractFromHeaders(
      headers,
      [](const std::pair<std::string, std::string>& h) { return absl::string_view(h.first); },
      [](const std::pair<std::string, std::string>& h) { return absl::string_view(h.second); });
}

namespace {

// "/pkg.Service/Method" -> {"pkg.Service", "Method"}.
std::pair<absl::string_view, absl::string_view> SplitMethod(absl::string_view full_method) {
  if (absl::StartsWith(full_method, "/")) full_method.remove_prefix(1);
  const size_t slash = full_method.rfind('/');
  if (slash == absl::string_view::npos) return {absl::string_view(), full_method};
  return {full_method.substr(0, slash), full_method.substr(slash + 1)};
}

void SetRpcAttributes(Span* span, absl::string_view full_method) {
  const auto [service, method] = SplitMethod(full_method);
  span->SetAttribute("rpc.system", "grpc");
  span->SetAttribute("rpc.service", service);
  span->SetAttribute("rpc.method", method);
}

absl::string_view SpanName(absl::string_view full_method) {
  if (absl::StartsWith(full_method, "/")) full_method.remove_prefix(1);
  return full_method;
}

}  // namespace

Span StartGrpcServerSpan(const Tracer& tracer, const grpc::ServerContextBase& context,
                         absl::string_view full_method) {
  const SpanContext parent = ExtractGrpc(context).value_or(SpanContext());
  Span span = tracer.StartSpan(SpanName(full_method), SpanKind::kServer, parent);
  SetRpcAttributes(&span, full_method);
  return span;
}

Span StartGrpcClientSpan(const Tracer& tracer, const Span& parent, absl::string_view full_method,
                         grpc::ClientContext* client_context) {
  Span span = tracer.StartSpan(SpanName(full_method), SpanKind::kClient, parent);
  SetRpcAttributes(&span, full_method);
  InjectGrpc(span.context(), client_context);
  return span;
}

Span StartHttpClientSpan(const Tracer& tracer, const Span& parent, http::HttpRequest* request) {
  return StartHttpClientSpan(tracer, parent.context(), request);
}

Span StartHttpClientSpan(const Tracer& tracer, const SpanContext& parent,
                         http::HttpRequest* request) {
  const absl::string_view method = http::HttpMethodName(request->method);
  Span span = tracer.StartSpan(method, SpanKind::kClient, parent);
  span.SetAttribute("http.request.method", method);
  span.SetAttribute("server.address", HostOf(request->url));
  span.SetAttribute("url.full", http::RedactUrl(request->url));
  InjectHttp(span.context(), &request->headers);
  return span;
}

}  // namespace tiermesh::tracing
