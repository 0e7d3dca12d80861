// The process's one Prometheus registry and its HTTP /metrics endpoint.
// main() creates it from the configured address, hands registry() to the
// services (which declare their families with families.h) and to RunServer
// (which adds the gRPC server metrics).
//
//   absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics =
//       metrics::MetricsServer::Start("0.0.0.0:9090");
//   if (!metrics.ok()) server::Fatal("router", metrics.status().message());
//   RouterServiceImpl service((*metrics)->registry());
//
// Tests pass "127.0.0.1:0" and read the chosen port from port().
#ifndef TIERMESH_SERVICES_COMMON_METRICS_METRICS_SERVER_H_
#define TIERMESH_SERVICES_COMMON_METRICS_METRICS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace tiermesh::metrics {

class MetricsServer {
 public:
  // Serves GET /metrics on `address` ("host:port"; port 0 picks a free port;
  // the embedded civetweb server has no IPv6). An empty address creates the
  // registry without an HTTP endpoint (port() is then 0).
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when it cannot be
  // bound (in use, not a local address).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      absl::string_view address);

  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  // For owners that must keep the registry alive (gRPC interceptors).
  const std::shared_ptr<prometheus::Registry>& shared_registry() const { return registry_; }
  // The bound port (the real one when the address asked for port 0).
  int port() const { return port_; }

 private:
  MetricsServer(std::shared_ptr<prometheus::Registry> registry,
                std::unique_ptr<prometheus::Exposer> exposer, int port);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// Checks a "host:port" address: non-empty host (a name, an IPv4 address or a
// bracketed IPv6 address), decimal port 0..65535. Shared with the gRPC server
// so both flags reject the same mistakes with the same words.
[[nodiscard]] absl::Status ValidateHostPort(absl::string_view address);

}  // namespace tiermesh::metrics

#endif  // TIERMESH_SERVICES_COMMON_METRICS_METRICS_SERVER_H_
