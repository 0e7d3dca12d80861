// A test-only binary that wires the common flags and RunServer the way a
// service main() does, so that tests can check the process-level behaviour
// (one-line errors and exit codes, real SIGTERM/SIGINT handling).
//
//   server_probe [common flags]
//     without --grpc_address: prints the parsed flags on one line, exits 0
//     with --grpc_address: serves a test ClassifierService whose
//       Classify{text="block"} never finishes on its own, with /metrics on
//       --metrics_address when given; prints "port=N metrics=M" once ready;
//       exits 0 after a graceful drain.
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "services/common/metrics/metrics_server.h"
#include "services/common/server/flags.h"
#include "services/common/server/server.h"
#include "tests/unit/common/metrics/grpc_test_services.h"

int main(int argc, char** argv) {
  namespace server = tiermesh::server;
  const server::CommonFlags flags =
      server::ParseCommonFlags(argc, argv, "probe", "server_probe: lifecycle test binary");
  if (flags.grpc_address.empty()) {
    const std::string line = absl::StrCat(
        "config=", flags.config_path, " grpc=", flags.grpc_address,
        " metrics=", flags.metrics_address, " log=", flags.log_level,
        " drain=", flags.drain_timeout ? absl::FormatDuration(*flags.drain_timeout) : "unset",
        "\n");
    std::fputs(line.c_str(), stdout);
    return 0;
  }

  absl::StatusOr<std::unique_ptr<tiermesh::metrics::MetricsServer>> metrics =
      tiermesh::metrics::MetricsServer::Start(flags.metrics_address);
  if (!metrics.ok()) server::Fatal("probe", metrics.status().message());
  const int metrics_port = (*metrics)->port();

  tiermesh::testing::Gate gate;  // never opened: "block" calls wait for cancellation
  tiermesh::testing::SyncClassifier classifier(&gate);
  server::ServerOptions options;
  options.service_name = "probe";
  options.grpc_address = flags.grpc_address;
  if (flags.drain_timeout) options.drain_timeout = *flags.drain_timeout;
  server::ServerComponents components;
  components.services = {&classifier};
  components.metrics_registry = (*metrics)->shared_registry();
  server::LifecycleHooks hooks;
  hooks.warm_up = [metrics_port](server::RunningServer& running) {
    std::printf("port=%d metrics=%d\n", running.port(), metrics_port);
    std::fflush(stdout);
    return absl::OkStatus();
  };
  server::FatalIfError("probe", server::RunServer(options, components, hooks));
  return 0;
}
