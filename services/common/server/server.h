// The one lifecycle every tiermesh service runs (STYLE.md habit 9):
// listen → health NOT_SERVING → warm up → SERVING → on SIGTERM/SIGINT:
// NOT_SERVING, stop taking calls, let in-flight calls finish until the drain
// timeout, stop → return OK. A second signal exits at once (non-zero).
// Every server gets the standard grpc.health.v1 health service, server
// reflection and the gRPC metrics interceptor.
//
//   int main(int argc, char** argv) {
//     server::CommonFlags flags = server::ParseCommonFlags(argc, argv, "classifier");
//     ... load and validate config, server::Fatal("classifier", msg) when bad ...
//     auto metrics = metrics::MetricsServer::Start(flags.metrics_address);
//     if (!metrics.ok()) server::Fatal("classifier", metrics.status().message());
//     ClassifierServiceImpl service(model, (*metrics)->registry());
//     server::ServerOptions options;
//     options.service_name = "classifier";
//     options.grpc_address = flags.grpc_address;
//     options.health_service_names = {tiermesh::v1::ClassifierService::service_full_name()};
//     server::ServerComponents parts;
//     parts.services = {&service};
//     parts.metrics_registry = (*metrics)->shared_registry();
//     server::LifecycleHooks hooks;
//     hooks.warm_up = [&](server::RunningServer&) { return model.Load(); };
//     server::FatalIfError("classifier", server::RunServer(options, parts, hooks));
//   }
//
// In-process tests use RunningServer directly: Start() on "127.0.0.1:0",
// port(), SetServing(), Shutdown().
#ifndef TIERMESH_SERVICES_COMMON_SERVER_SERVER_H_
#define TIERMESH_SERVICES_COMMON_SERVER_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/registry.h"

#include "services/common/logging/logger.h"
#include "services/common/server/flags.h"
#include "services/common/server/health_watches.h"
#include "services/common/server/signal_source.h"
#include "services/common/server/tracing_interceptor.h"
#include "services/common/tracing/tracer.h"

namespace tiermesh::server {

struct ServerOptions {
  // Short service name: "router", "classifier". Prefixes errors and logs.
  std::string service_name;
  // "host:port" (port 0 picks a free port: see RunningServer::port()),
  // "[::]:port", or "unix:/path".
  std::string grpc_address;
  // How long in-flight calls may run after a shutdown request before they
  // are cancelled. Long LLM streams need minutes, not seconds.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Time between going NOT_SERVING and refusing new calls, so that load
  // balancers polling health stop sending first (0: refuse at once).
  absl::Duration drain_delay = absl::ZeroDuration();
  // Server-side HTTP/2 keepalive pings: a client that vanished without
  // closing its connection is found within about keepalive_time + 10 s, and
  // its calls are cancelled, instead of a long generation running on for
  // nobody. Clients may ping as often as every 10 s. Zero: gRPC's defaults.
  absl::Duration keepalive_time = absl::Seconds(30);
  // Most idle threads gRPC's sync server keeps waiting for calls. Each sync
  // call runs on the thread that picked it up; with gRPC's default (2), a
  // thread that finishes a call while two others are polling exits, and the
  // next call that finds no poller creates a new one: under concurrent load
  // that is a thread created and destroyed per call. Measured through the
  // whole mesh on 2 cores (tools/bench/mesh_overhead.py): 1,100-1,400 req/s
  // with 2, 2,000-2,360 with 32-64 (router CPU per call 0.67-0.87 ms ->
  // 0.36-0.45 ms). Idle threads above gRPC's minimum still exit after 10 s
  // without a call.
  int max_pollers = 64;
  // Health names set besides "" (the whole server), normally the full proto
  // names of the services, e.g. ClassifierService::service_full_name().
  std::vector<std::string> health_service_names;
  // Lifecycle events go here; default: a JSON logger on stderr named
  // after service_name.
  std::optional<logging::Logger> logger;
  // Where to write {"service":..., "grpc_port":N, "metrics_port":M} once
  // the gRPC port is bound (before health turns SERVING), atomically (write
  // then rename): how a supervisor or test that passed port 0 learns the
  // ports, with no race for a "free" port. Empty: no file.
  std::string ports_file;
  // The bound /metrics port, only for ports_file (0: none).
  int metrics_port = 0;
  // Last say on the builder (message size limits, thread pools). Must not
  // set interceptor creators (that would drop health/tracing/metrics ones):
  // use ServerComponents::interceptors.
  std::function<void(grpc::ServerBuilder&)> configure_builder;
};

// What every service's main sets alike: the name, the logger, --grpc_address
// (else `default_address`), --drain_timeout (else `default_drain`),
// --ports_file and the bound /metrics port. Each service then adds its health
// names and whatever else is its own.
[[nodiscard]] ServerOptions ServiceServerOptions(const CommonFlags& flags,
                                                 absl::string_view service_name,
                                                 absl::string_view default_address,
                                                 absl::Duration default_drain,
                                                 const logging::Logger& logger, int metrics_port);

using InterceptorFactoryMaker =
    std::function<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>()>;

struct ServerComponents {
  // The services to serve; not owned, they must outlive the server.
  std::vector<grpc::Service*> services;
  // Where the gRPC server metrics go; null: no gRPC metrics.
  std::shared_ptr<prometheus::Registry> metrics_registry;
  // With a tracer, every call gets a server span (tracing_interceptor.h);
  // handlers then must not start their own server span.
  std::optional<tracing::Tracer> tracer;
  // Where handlers find their call's server span; may be null.
  std::shared_ptr<ServerSpans> server_spans;
  // More interceptors, each made once per server start. Order: tracing,
  // these, metrics.
  std::vector<InterceptorFactoryMaker> interceptors;
};

// A started server: the in-process handle used by RunServer and by tests.
class RunningServer {
 public:
  // Builds and starts the server with health NOT_SERVING. INVALID_ARGUMENT
  // for a malformed address or options; UNAVAILABLE when the address cannot
  // be bound (port in use, not a local address). The error message is one
  // line that names the address.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RunningServer>> Start(
      const ServerOptions& options, const ServerComponents& components);

  // Shuts down (gracefully, as Shutdown()) if that has not happened.
  ~RunningServer();
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  // The bound TCP port (the chosen one for port 0); 0 for unix sockets.
  int port() const { return port_; }
  const ServerOptions& options() const { return options_; }
  const logging::Logger& logger() const { return logger_; }
  grpc::Server& grpc_server() { return *server_; }

  // Health of "" and of every health_service_names entry. Has no effect once
  // draining: a draining server stays NOT_SERVING.
  void SetServing(bool serving);
  bool serving() const;
  // True from the start of Shutdown(); warm-up code polls it to give up early.
  bool draining() const;

  // Graceful stop: NOT_SERVING, drain_delay, refuse new calls, wait for
  // in-flight calls up to drain_timeout, cancel the rest, wait until every
  // handler has returned. Idempotent; concurrent callers all wait.
  // Sync handlers must watch ServerContext::IsCancelled() (or a deadline),
  // or a stuck handler holds shutdown forever past the drain timeout.
  void Shutdown();
  // Blocks until Shutdown() has completed (called from another thread).
  void Wait();

 private:
  RunningServer(ServerOptions options, logging::Logger logger, std::unique_ptr<grpc::Server> server,
                int port, std::shared_ptr<HealthWatches> health_watches);

  const ServerOptions options_;
  const logging::Logger logger_;
  std::unique_ptr<grpc::Server> server_;
  const int port_;
  const std::shared_ptr<HealthWatches> health_watches_;
  mutable absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

struct LifecycleHooks {
  // Runs on its own thread once the server listens (health NOT_SERVING).
  // Returning OK flips health to SERVING (the service may flip it again
  // later with server.SetServing); an error stops the server and RunServer
  // returns it. Long warm-ups should give up when server.draining().
  // Default: ready at once.
  std::function<absl::Status(RunningServer& server)> warm_up;
  // Runs after the server stopped and every call finished: flush exporters,
  // stop child processes.
  std::function<void()> on_stopped;
};

// What touches the process; tests replace both.
struct RunEnvironment {
  // Shutdown requests; null: SIGTERM and SIGINT through a PosixSignalSource.
  SignalSource* signals = nullptr;
  // Called with 128 + signal on a second signal; null: std::_Exit. In tests
  // it may return, and RunServer then carries on draining.
  std::function<void(int exit_code)> exit_now;
};

// Runs the server until a shutdown signal, then drains and returns OK (the
// caller exits 0). Returns the start error (see RunningServer::Start) or the
// warm-up error; main turns it into one line and a non-zero exit with
// FatalIfError.
[[nodiscard]] absl::Status RunServer(const ServerOptions& options,
                                     const ServerComponents& components,
                                     const LifecycleHooks& hooks = {}, RunEnvironment env = {});

// Checks a gRPC listen address: "host:port", "[v6]:port" or "unix:/path".
[[nodiscard]] absl::Status ValidateGrpcAddress(absl::string_view address);

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_SERVER_H_
