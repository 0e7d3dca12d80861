// A server span for every gRPC call, started by an interceptor so that no
// handler forgets it: the span continues the caller's W3C traceparent, is
// named "package.Service/Method", carries rpc.* attributes and the final
// gRPC status, and ends when the call ends.
//
// Handlers reach their call's span in two ways:
//  - the interceptor rewrites the call's incoming "traceparent" metadata to
//    the server span's own context, so tracing::ExtractGrpc(*context) (and
//    anything built on it) makes children of the server span;
//  - ServerSpans::Find(context) returns the span itself, to add attributes
//    (tier, model) to it.
// With this interceptor installed a handler must NOT start a second server
// span (tracing::StartGrpcServerSpan); it starts internal or client spans.
//
//   auto spans = std::make_shared<server::ServerSpans>();
//   server::ServerComponents parts;
//   parts.tracer = tracer;            // RunServer installs the interceptor
//   parts.server_spans = spans;       // optional
//   RouterServiceImpl service(tracer, spans);
//   ... in a handler:
//   if (tracing::Span* span = spans->Find(context)) span->SetAttribute("tiermesh.tier", "small");
#ifndef TIERMESH_SERVICES_COMMON_SERVER_TRACING_INTERCEPTOR_H_
#define TIERMESH_SERVICES_COMMON_SERVER_TRACING_INTERCEPTOR_H_

#include <cstddef>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_interceptor.h"

#include "services/common/tracing/tracer.h"

namespace tiermesh::server {

// The server spans of the calls in flight, by ServerContext. Thread-safe.
class ServerSpans {
 public:
  // The span of the call behind `context`, valid until the call ends; null
  // when the call is not traced (no tracer, or another server).
  tracing::Span* Find(const grpc::ServerContextBase* context) const;
  // Calls with a span right now.
  size_t size() const;

  // Used by the interceptor.
  void Add(const grpc::ServerContextBase* context, tracing::Span* span);
  void Remove(const grpc::ServerContextBase* context);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const grpc::ServerContextBase*, tracing::Span*> spans_ ABSL_GUARDED_BY(mu_);
};

// Whether a call of `method` ("/pkg.Service/Method") that arrives WITHOUT a trace context starts
// a new trace. Housekeeping calls (grpc.health.v1, server reflection, InferenceService/GetLoad,
// which load balancers, probes and the router's poller make every second) do not: they would
// bury the requests' traces. With a caller's traceparent every call is traced.
[[nodiscard]] bool StartsRootTrace(absl::string_view method);

// The interceptor factory. A disabled tracer (Tracer::Noop()) makes a
// factory that intercepts nothing. `spans` may be null.
[[nodiscard]] std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewTracingInterceptorFactory(tracing::Tracer tracer, std::shared_ptr<ServerSpans> spans);

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_TRACING_INTERCEPTOR_H_
