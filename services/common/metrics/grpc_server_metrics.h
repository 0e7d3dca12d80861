// gRPC server metrics recorded by a server interceptor, the same for every
// service (unary and streaming, sync and callback API):
//   tiermesh_grpc_server_requests_total{method,code}        calls finished
//   tiermesh_grpc_server_request_duration_seconds{method}   arrival to status
//   tiermesh_grpc_server_in_flight{method}                  calls running now
// `method` is the full gRPC name, "/tiermesh.v1.RouterService/Chat"; `code` is
// the canonical code name, "OK", "UNAVAILABLE".
//
// RunServer installs it; code building its own grpc::ServerBuilder does:
//   ASSIGN_OR_RETURN(auto server_metrics, metrics::GrpcServerMetrics::Create(registry));
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
//   f.push_back(metrics::NewServerMetricsInterceptorFactory(server_metrics));
//   builder.experimental().SetInterceptorCreators(std::move(f));
#ifndef TIERMESH_SERVICES_COMMON_METRICS_GRPC_SERVER_METRICS_H_
#define TIERMESH_SERVICES_COMMON_METRICS_GRPC_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace tiermesh::metrics {

inline constexpr absl::string_view kGrpcRequestsTotal = "tiermesh_grpc_server_requests_total";
inline constexpr absl::string_view kGrpcRequestDuration =
    "tiermesh_grpc_server_request_duration_seconds";
inline constexpr absl::string_view kGrpcInFlight = "tiermesh_grpc_server_in_flight";

// Label value for method names that cannot be trusted to be bounded: calls
// to methods that do not exist (gRPC hands the callback API the caller's
// raw name), and anything past kMaxMethods distinct names.
inline constexpr absl::string_view kOtherMethod = "other";

// Decides whether a "/pkg.Service/Method" name may become a label value.
using MethodFilter = std::function<bool(absl::string_view method)>;

// Monotonic time source; injected so tests can give exact durations.
using MonotonicClock = std::function<std::chrono::steady_clock::time_point()>;

class GrpcServerMetrics {
 public:
  // Distinct method label values kept before falling back to kOtherMethod: a
  // guard against label explosion should anything feed unbounded names.
  static constexpr std::size_t kMaxMethods = 256;

  // The metric children of one method, created once.
  struct MethodMetrics {
    prometheus::Gauge* in_flight = nullptr;
    prometheus::Histogram* duration = nullptr;
    // Indexed by grpc::StatusCode (0..16); created on first use.
    std::array<std::atomic<prometheus::Counter*>, 17> requests{};
    std::string method;
  };

  // Registers the three families in `registry` (kept alive by this object).
  // `known_method` defaults to IsCompiledInMethod; `clock` to steady_clock.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<GrpcServerMetrics>> Create(
      std::shared_ptr<prometheus::Registry> registry, MonotonicClock clock = nullptr,
      MethodFilter known_method = nullptr);

  GrpcServerMetrics(const GrpcServerMetrics&) = delete;
  GrpcServerMetrics& operator=(const GrpcServerMetrics&) = delete;

  // The children for `method` (cached). Names that are not known methods
  // map to kOtherMethod.
  MethodMetrics& ForMethod(absl::string_view method);
  // The request counter for a method and code (cached).
  prometheus::Counter& Requests(MethodMetrics& method, grpc::StatusCode code);

  std::chrono::steady_clock::time_point Now() const { return clock_(); }

 private:
  GrpcServerMetrics(std::shared_ptr<prometheus::Registry> registry, MonotonicClock clock,
                    MethodFilter known_method, prometheus::Family<prometheus::Counter>* requests,
                    prometheus::Family<prometheus::Histogram>* duration,
                    prometheus::Family<prometheus::Gauge>* in_flight);

  MethodMetrics& CreateLocked(const std::string& method) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<prometheus::Registry> registry_;
  const MonotonicClock clock_;
  const MethodFilter known_method_;
  prometheus::Family<prometheus::Counter>* const requests_;
  prometheus::Family<prometheus::Histogram>* const duration_;
  prometheus::Family<prometheus::Gauge>* const in_flight_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodMetrics>> methods_ ABSL_GUARDED_BY(mu_);
};

// The interceptor factory to hand to grpc::ServerBuilder. It keeps `metrics`
// alive for as long as the server holds it.
[[nodiscard]] std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewServerMetricsInterceptorFactory(std::shared_ptr<GrpcServerMetrics> metrics);

// True for "/package.Service/Method"-shaped names.
[[nodiscard]] bool IsFullMethodName(absl::string_view method);
// True for methods of services compiled into this binary (the protobuf
// generated pool: a finite set) and for grpc.health.v1.Health, whose
// generated code gRPC keeps to itself.
[[nodiscard]] bool IsCompiledInMethod(absl::string_view method);

}  // namespace tiermesh::metrics

#endif  // TIERMESH_SERVICES_COMMON_METRICS_GRPC_SERVER_METRICS_H_
