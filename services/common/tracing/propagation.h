// Carries a SpanContext across process boundaries as W3C `traceparent` and
// `tracestate`: in gRPC metadata between services, and in HTTP headers to
// llama-server and providers. Plus small helpers that start the usual spans.
//
//   // gRPC server handler:
//   tracing::Span span = tracing::StartGrpcServerSpan(tracer, *context,
//                                                    "/tiermesh.v1.RouterService/Chat");
//   // outgoing gRPC call (child of `span`, traceparent added to the metadata):
//   grpc::ClientContext client_context;
//   tracing::Span call = tracing::StartGrpcClientSpan(
//       tracer, span, "/tiermesh.v1.InferenceService/Generate", &client_context);
//   // outgoing HTTP request:
//   tracing::Span http_span = tracing::StartHttpClientSpan(tracer, span, &request);
//
// Extraction follows the spec: a missing or invalid traceparent (or more than
// one) means "no parent", and the service starts a new trace; a tracestate
// is only kept with a valid traceparent. Injection replaces any traceparent /
// tracestate already present, and adds nothing for an invalid context.
#ifndef TIERMESH_SERVICES_COMMON_TRACING_PROPAGATION_H_
#define TIERMESH_SERVICES_COMMON_TRACING_PROPAGATION_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/string_ref.h"

#include "services/common/http/http_client.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/tracer.h"

namespace tiermesh::tracing {

inline constexpr absl::string_view kTraceparentHeader = "traceparent";
inline constexpr absl::string_view kTracestateHeader = "tracestate";

// gRPC. Metadata keys are lower case, as gRPC requires.
void InjectGrpc(const SpanContext& context, grpc::ClientContext* client_context);
[[nodiscard]] absl::optional<SpanContext> ExtractGrpc(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);
[[nodiscard]] absl::optional<SpanContext> ExtractGrpc(const grpc::ServerContextBase& context);

// HTTP, with header names matched case-insensitively.
void InjectHttp(const SpanContext& context, http::HttpHeaders* headers);
[[nodiscard]] absl::optional<SpanContext> ExtractHttp(const http::HttpHeaders& headers);
using HeaderPairs = std::vector<std::pair<std::string, std::string>>;
void InjectHttp(const SpanContext& context, HeaderPairs* headers);
[[nodiscard]] absl::optional<SpanContext> ExtractHttp(const HeaderPairs& headers);

// A kServer span for an incoming call, child of the caller's context when it
// sent one. `full_method` is "/package.Service/Method" (what
// ServerContextBase and interceptors report); the span is named
// "package.Service/Method" and gets rpc.system, rpc.service, rpc.method.
[[nodiscard]] Span StartGrpcServerSpan(const Tracer& tracer, const grpc::ServerContextBase& context,
                                       absl::string_view full_method);
// A kClient span for an outgoing call, injected into `client_context`.
[[nodiscard]] Span StartGrpcClientSpan(const Tracer& tracer, const Span& parent,
                                       absl::string_view full_method,
                                       grpc::ClientContext* client_context);
// A kClient span for an outgoing HTTP request, injected into its headers;
// named after the method ("POST") with http.request.method, server.address
// and url.full (http::RedactUrl: no query, no credentials).
[[nodiscard]] Span StartHttpClientSpan(const Tracer& tracer, const Span& parent,
                                       http::HttpRequest* request);
// The same with the parent's context only (e.g. extracted from a call's
// metadata); an invalid `parent` starts a new trace.
[[nodiscard]] Span StartHttpClientSpan(const Tracer& tracer, const SpanContext& parent,
                                       http::HttpRequest* request);

}  // namespace tiermesh::tracing

#endif  // TIERMESH_SERVICES_COMMON_TRACING_PROPAGATION_H_
