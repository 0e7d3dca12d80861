#include "services/common/metrics/grpc_server_metrics.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

#include "services/common/metrics/families.h"
#include "services/common/status/status.h"

namespace tiermesh::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr int kCodeCount = 17;  // grpc::StatusCode OK (0) .. UNAUTHENTICATED (16)

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

// One per RPC. It is created when the call arrives and destroyed when gRPC is
// done with the call, so "in flight" spans exactly the call's life on this
// server, whatever API (sync, callback) or shape (unary, streaming) it has.
class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(GrpcServerMetrics* metrics, GrpcServerMetrics::MethodMetrics* method)
      : metrics_(metrics), method_(method), start_(metrics->Now()) {
    method_->in_flight->Increment();
  }

  // A call that never sent a status (torn down by a forced shutdown) is
  // counted as CANCELLED, which is what its client saw.
  ~MetricsInterceptor() override { Finish(grpc::StatusCode::CANCELLED); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Finish(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Finish(grpc::StatusCode code) {
    if (finished_) return;
    finished_ = true;
    const double seconds = std::chrono::duration<double>(metrics_->Now() - start_).count();
    method_->duration->Observe(seconds < 0 ? 0 : seconds);
    metrics_->Requests(*method_, code).Increment();
    method_->in_flight->Decrement();
  }

  GrpcServerMetrics* const metrics_;
  GrpcServerMetrics::MethodMetrics* const method_;
  const std::chrono::steady_clock::time_point start_;
  // PRE_SEND_STATUS happens once per call and strictly before destruction.
  bool finished_ = false;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(std::shared_ptr<GrpcServerMetrics> metrics)
      : metrics_(std::move(metrics)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const char* method = info->method();
    GrpcServerMetrics::MethodMetrics& children =
        metrics_->ForMethod(method == nullptr ? absl::string_view() : absl::string_view(method));
    return new MetricsInterceptor(metrics_.get(), &children);
  }

 private:
  std::shared_ptr<GrpcServerMetrics> metrics_;
};

}  // namespace

bool IsFullMethodName(absl::string_view method) {
  if (method.size() < 4 || method.front() != '/') return false;
  const size_t slash = method.find('/', 1);
  if (slash == absl::string_view::npos || slash == 1 || slash + 1 == method.size()) return false;
  for (size_t i = 1; i < method.size(); ++i) {
    if (i == slash) continue;
    if (!IsNameChar(method[i])) return false;
  }
  return true;
}

bool IsCompiledInMethod(absl::string_view method) {
  if (!IsFullMethodName(method)) return false;
  if (method == "/grpc.health.v1.Health/Check" || method == "/grpc.health.v1.Health/Watch") {
    return true;
  }
  const size_t slash = method.find('/', 1);
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(method.substr(1, slash - 1)));
  return service != nullptr &&
         service->FindMethodByName(std::string(method.substr(slash + 1))) != nullptr;
}

GrpcServerMetrics::GrpcServerMetrics(std::shared_ptr<prometheus::Registry> registry,
                                     MonotonicClock clock, MethodFilter known_method,
                                     prometheus::Family<prometheus::Counter>* requests,
                                     prometheus::Family<prometheus::Histogram>* duration,
                                     prometheus::Family<prometheus::Gauge>* in_flight)
    : registry_(std::move(registry)),
      clock_(std::move(clock)),
      known_method_(std::move(known_method)),
      requests_(requests),
      duration_(duration),
      in_flight_(in_flight) {}

absl::StatusOr<std::shared_ptr<GrpcServerMetrics>> GrpcServerMetrics::Create(
    std::shared_ptr<prometheus::Registry> registry, MonotonicClock clock,
    MethodFilter known_method) {
  if (registry == nullptr) return absl::InvalidArgumentError("gRPC server metrics need a registry");
  if (clock == nullptr) clock = [] { return std::chrono::steady_clock::now(); };
  if (known_method == nullptr) known_method = IsCompiledInMethod;
  TIERMESH_ASSIGN_OR_RETURN(
      prometheus::Family<prometheus::Counter> * requests,
      AddCounterFamily(*registry, kGrpcRequestsTotal, "gRPC calls finished, by method and code."));
  TIERMESH_ASSIGN_OR_RETURN(
      prometheus::Family<prometheus::Histogram> * duration,
      AddHistogramFamily(*registry, kGrpcRequestDuration,
                         "gRPC call duration in seconds, from arrival to the final status."));
  TIERMESH_ASSIGN_OR_RETURN(
      prometheus::Family<prometheus::Gauge> * in_flight,
      AddGaugeFamily(*registry, kGrpcInFlight, "gRPC calls being served now, by method."));
  return std::shared_ptr<GrpcServerMetrics>(
      new GrpcServerMetrics(std::move(registry), std::move(clock), std::move(known_method),
                            requests, duration, in_flight));
}

GrpcServerMetrics::MethodMetrics& GrpcServerMetrics::ForMethod(absl::string_view method) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = methods_.find(method);
    if (it != methods_.end()) return *it->second;
  }
  // Only a cache miss pays for the filter (a descriptor pool lookup).
  const absl::string_view label =
      IsFullMethodName(method) && known_method_(method) ? method : kOtherMethod;
  absl::MutexLock lock(&mu_);
  auto it = methods_.find(label);
  if (it != methods_.end()) return *it->second;
  if (methods_.size() >= kMaxMethods) {
    auto other = methods_.find(kOtherMethod);
    if (other != methods_.end()) return *other->second;
    return CreateLocked(std::string(kOtherMethod));
  }
  return CreateLocked(std::string(label));
}

GrpcServerMetrics::MethodMetrics& GrpcServerMetrics::CreateLocked(const std::string& method) {
  auto children = std::make_unique<MethodMetrics>();
  children->method = method;
  children->in_flight = &in_flight_->Add({{"method", method}});
  children->duration = &duration_->Add({{"method", method}}, LatencyBucketsSeconds());
  MethodMetrics& ref = *children;
  methods_.emplace(method, std::move(children));
  return ref;
}

prometheus::Counter& GrpcServerMetrics::Requests(MethodMetrics& method, grpc::StatusCode code) {
  int index = static_cast<int>(code);
  if (index < 0 || index >= kCodeCount) index = static_cast<int>(grpc::StatusCode::UNKNOWN);
  prometheus::Counter* counter = method.requests[index].load(std::memory_order_acquire);
  if (counter != nullptr) return *counter;
  absl::MutexLock lock(&mu_);
  counter = method.requests[index].load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter =
        &requests_->Add({{"method", method.method},
                         {"code", std::string(CodeName(static_cast<grpc::StatusCode>(index)))}});
    method.requests[index].store(counter, std::memory_order_release);
  }
  return *counter;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewServerMetricsInterceptorFactory(std::shared_ptr<GrpcServerMetrics> metrics) {
  return std::make_unique<MetricsInterceptorFactory>(std::move(metrics));
}

}  // namespace tiermesh::metrics
