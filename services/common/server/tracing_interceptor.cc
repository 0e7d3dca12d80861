#include "services/common/server/tracing_interceptor.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/status/status.h"
#include "services/common/tracing/propagation.h"
#include "services/common/tracing/span_context.h"

namespace tiermesh::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// Callers choose the method name of a call to an unknown method; a span
// name should not repeat whatever they sent.
std::string SpanMethod(const char* method) {
  const absl::string_view name = method == nullptr ? "" : method;
  return metrics::IsCompiledInMethod(name) ? std::string(name) : "/unknown/unknown";
}

class TracingInterceptor final : public grpc::experimental::Interceptor {
 public:
  TracingInterceptor(const tracing::Tracer* tracer, ServerSpans* spans,
                     grpc::experimental::ServerRpcInfo* info)
      : tracer_(tracer),
        spans_(spans),
        context_(info->server_context()),
        method_(SpanMethod(info->method())) {}

  ~TracingInterceptor() override {
    if (registered_) spans_->Remove(context_);
    span_.End();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      StartSpan(methods->GetRecvInitialMetadata());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      span_.SetAttribute("rpc.grpc.status_code", static_cast<int64_t>(status.error_code()));
      span_.RecordStatus(FromGrpcStatus(status));
    }
    methods->Proceed();
  }

 private:
  void StartSpan(std::multimap<grpc::string_ref, grpc::string_ref>* metadata) {
    if (metadata == nullptr) return;
    const tracing::SpanContext parent =
        tracing::ExtractGrpc(*metadata).value_or(tracing::SpanContext());
    if (!parent.IsValid() && !StartsRootTrace(method_)) return;
    const absl::string_view full = method_;
    const size_t slash = full.find('/', 1);
    span_ = tracer_->StartSpan(full.substr(1), tracing::SpanKind::kServer, parent);
    span_.SetAttribute("rpc.system", "grpc");
    span_.SetAttribute("rpc.service", full.substr(1, slash - 1));
    span_.SetAttribute("rpc.method", full.substr(slash + 1));
    if (spans_ != nullptr && context_ != nullptr) {
      spans_->Add(context_, &span_);
      registered_ = true;
    }
    // From here the handler sees the server span as its caller's context.
    const tracing::SpanContext& own = span_.context();
    if (!own.IsValid()) return;
    traceparent_ = tracing::FormatTraceparent(own);
    tracestate_ = own.trace_state;
    for (auto it = metadata->begin(); it != metadata->end();) {
      const absl::string_view key(it->first.data(), it->first.size());
      if (key == tracing::kTraceparentHeader || key == tracing::kTracestateHeader) {
        it = metadata->erase(it);
      } else {
        ++it;
      }
    }
    metadata->emplace(
        grpc::string_ref(tracing::kTraceparentHeader.data(), tracing::kTraceparentHeader.size()),
        grpc::string_ref(traceparent_));
    if (!tracestate_.empty()) {
      metadata->emplace(
          grpc::string_ref(tracing::kTracestateHeader.data(), tracing::kTracestateHeader.size()),
          grpc::string_ref(tracestate_));
    }
  }

  const tracing::Tracer* const tracer_;
  ServerSpans* const spans_;
  const grpc::ServerContextBase* const context_;
  const std::string method_;
  tracing::Span span_;
  bool registered_ = false;
  // The rewritten metadata points into these; they live as long as the call.
  std::string traceparent_;
  std::string tracestate_;
};

class TracingInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  TracingInterceptorFactory(tracing::Tracer tracer, std::shared_ptr<ServerSpans> spans)
      : tracer_(std::move(tracer)), spans_(std::move(spans)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (!tracer_.enabled()) return nullptr;
    return new TracingInterceptor(&tracer_, spans_.get(), info);
  }

 private:
  const tracing::Tracer tracer_;
  const std::shared_ptr<ServerSpans> spans_;
};

}  // namespace

bool StartsRootTrace(absl::string_view method) {
  return !absl::StartsWith(method, "/grpc.health.v1.Health/") &&
         !absl::StartsWith(method, "/grpc.reflection.") &&
         method != "/tiermesh.v1.InferenceService/GetLoad";
}

tracing::Span* ServerSpans::Find(const grpc::ServerContextBase* context) const {
  absl::MutexLock lock(&mu_);
  auto it = spans_.find(context);
  return it == spans_.end() ? nullptr : it->second;
}

size_t ServerSpans::size() const {
  absl::MutexLock lock(&mu_);
  return spans_.size();
}

void ServerSpans::Add(const grpc::ServerContextBase* context, tracing::Span* span) {
  absl::MutexLock lock(&mu_);
  spans_[context] = span;
}

void ServerSpans::Remove(const grpc::ServerContextBase* context) {
  absl::MutexLock lock(&mu_);
  spans_.erase(context);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewTracingInterceptorFactory(
    tracing::Tracer tracer, std::shared_ptr<ServerSpans> spans) {
  return std::make_unique<TracingInterceptorFactory>(std::move(tracer), std::move(spans));
}

}  // namespace tiermesh::server
