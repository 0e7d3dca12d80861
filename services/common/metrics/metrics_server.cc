#include "services/common/metrics/metrics_server.h"

#include <algorithm>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"

namespace tiermesh::metrics {

absl::Status ValidateHostPort(absl::string_view address) {
  if (address.empty()) return absl::InvalidArgumentError("address is empty");
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' has no port (want host:port)"));
  }
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "address '", address, "' has no host (want host:port, e.g. 0.0.0.0:", port, ")"));
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", address, "' has a malformed IPv6 host"));
    }
  } else if (host.find(':') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': IPv6 hosts must be bracketed, e.g. [::]:50051"));
  } else {
    for (char c : host) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
        return absl::InvalidArgumentError(
            absl::StrCat("address '", address, "' has an invalid host"));
      }
    }
  }
  int port_number = -1;
  const bool all_digits =
      !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
  if (!all_digits || !absl::SimpleAtoi(port, &port_number) || port_number > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' has an invalid port (want 0..65535)"));
  }
  return absl::OkStatus();
}

MetricsServer::MetricsServer(std::shared_ptr<prometheus::Registry> registry,
                             std::unique_ptr<prometheus::Exposer> exposer, int port)
    : registry_(std::move(registry)), exposer_(std::move(exposer)), port_(port) {}

MetricsServer::~MetricsServer() = default;

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(absl::string_view address) {
  auto registry = std::make_shared<prometheus::Registry>();
  if (address.empty()) {
    return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(registry), nullptr, 0));
  }
  absl::Status valid = ValidateHostPort(address);
  if (!valid.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address: ", valid.message()));
  }
  // prometheus-cpp (civetweb) reports a failed bind by throwing; stop it here.
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(std::string(address), /*num_threads=*/2);
  } catch (const std::exception&) {
    // civetweb's message ("null context ...") says nothing useful; ours does.
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on '", address,
                     "': cannot bind (port in use, or not a local address)"));
  }
  std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on '", address, "': no listening port"));
  }
  exposer->RegisterCollectable(registry);
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(registry), std::move(exposer), ports.front()));
}

}  // namespace tiermesh::metrics
