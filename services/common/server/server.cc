#include "services/common/server/server.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"

#include "services/common/metrics/grpc_server_metrics.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/status/status.h"

namespace tiermesh::server {
namespace {

constexpr absl::string_view kUnixPrefix = "unix:";
constexpr absl::string_view kUnixAbstractPrefix = "unix-abstract:";

bool IsUnixAddress(absl::string_view address) {
  return absl::StartsWith(address, kUnixPrefix) || absl::StartsWith(address, kUnixAbstractPrefix);
}

logging::Logger DefaultLogger(const std::string& service_name) {
  logging::LoggerOptions options;
  options.service = service_name;
  return logging::Logger(std::move(options));
}

std::string SignalName(int signal) {
  switch (signal) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGQUIT:
      return "SIGQUIT";
    default:
      return absl::StrCat("signal ", signal);
  }
}

// The first reason to stop wins: a shutdown signal (OK) or a warm-up error.
class StopLatch {
 public:
  void Request(absl::Status reason) {
    absl::MutexLock lock(&mu_);
    if (requested_) return;
    requested_ = true;
    reason_ = std::move(reason);
  }
  absl::Status Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&requested_));
    return reason_;
  }

 private:
  absl::Mutex mu_;
  bool requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status reason_ ABSL_GUARDED_BY(mu_);
};

// ports_file (see ServerOptions): a temporary file beside it, then rename, so that a reader
// never sees half a file.
absl::Status WritePortsFile(const ServerOptions& options, int grpc_port) {
  const std::string text =
      absl::StrCat("{\"service\":\"", options.service_name, "\",\"grpc_port\":", grpc_port,
                   ",\"metrics_port\":", options.metrics_port, "}\n");
  const std::string temporary = absl::StrCat(options.ports_file, ".tmp.", getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::remove(temporary.c_str());
      return absl::UnavailableError(
          absl::StrCat("cannot write the ports file '", options.ports_file, "'"));
    }
  }
  if (std::rename(temporary.c_str(), options.ports_file.c_str()) != 0) {
    const int error = errno;
    std::remove(temporary.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write the ports file '",
                                               options.ports_file, "': ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateGrpcAddress(absl::string_view address) {
  if (IsUnixAddress(address)) {
    const absl::string_view path = absl::StartsWith(address, kUnixPrefix)
                                       ? address.substr(kUnixPrefix.size())
                                       : address.substr(kUnixAbstractPrefix.size());
    if (path.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("address '", address, "' has no socket path"));
    }
    return absl::OkStatus();
  }
  return metrics::ValidateHostPort(address);
}

RunningServer::RunningServer(ServerOptions options, logging::Logger logger,
                             std::unique_ptr<grpc::Server> server, int port,
                             std::shared_ptr<HealthWatches> health_watches)
    : options_(std::move(options)),
      logger_(std::move(logger)),
      server_(std::move(server)),
      port_(port),
      health_watches_(std::move(health_watches)) {}

absl::StatusOr<std::unique_ptr<RunningServer>> RunningServer::Start(
    const ServerOptions& options, const ServerComponents& components) {
  if (options.service_name.empty()) {
    return absl::InvalidArgumentError("server options: service_name is empty");
  }
  absl::Status address_ok = ValidateGrpcAddress(options.grpc_address);
  if (!address_ok.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("grpc address: ", address_ok.message()));
  }
  if (options.drain_timeout < absl::ZeroDuration() ||
      options.drain_timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("server options: drain_timeout must be finite and >= 0");
  }
  if (options.max_pollers < 1 || options.max_pollers > 1024) {
    return absl::InvalidArgumentError("server options: max_pollers must be in [1, 1024]");
  }
  if (options.keepalive_time < absl::ZeroDuration() || options.keepalive_time > absl::Hours(24)) {
    return absl::InvalidArgumentError("server options: keepalive_time must be in [0, 24h]");
  }
  if (options.drain_delay < absl::ZeroDuration() ||
      options.drain_delay == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError("server options: drain_delay must be finite and >= 0");
  }
  absl::flat_hash_set<grpc::Service*> seen;
  for (grpc::Service* service : components.services) {
    if (service == nullptr) return absl::InvalidArgumentError("server: null service");
    if (!seen.insert(service).second) {
      return absl::InvalidArgumentError("server: the same service is registered twice");
    }
  }
  logging::Logger logger = options.logger ? *options.logger : DefaultLogger(options.service_name);

  // Both are process-wide switches in gRPC; turning them on again is harmless.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.grpc_address, grpc::InsecureServerCredentials(), &bound_port);
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a port
  // that is already in use and silently share its traffic. A busy port must
  // be an error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options.keepalive_time > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                               static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  }
  for (grpc::Service* service : components.services) builder.RegisterService(service);

  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  // First: see health_watches.h for why.
  auto health_watches = std::make_shared<HealthWatches>();
  factories.push_back(NewHealthWatchInterceptorFactory(health_watches));
  if (components.tracer.has_value() && components.tracer->enabled()) {
    factories.push_back(NewTracingInterceptorFactory(*components.tracer, components.server_spans));
  }
  for (const InterceptorFactoryMaker& make : components.interceptors) {
    if (!make) continue;
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> factory = make();
    if (factory != nullptr) factories.push_back(std::move(factory));
  }
  if (components.metrics_registry != nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(std::shared_ptr<metrics::GrpcServerMetrics> server_metrics,
                              metrics::GrpcServerMetrics::Create(components.metrics_registry));
    factories.push_back(metrics::NewServerMetricsInterceptorFactory(std::move(server_metrics)));
  }
  builder.experimental().SetInterceptorCreators(std::move(factories));
  // See ServerOptions::max_pollers.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options.max_pollers);
  if (options.configure_builder) options.configure_builder(builder);

  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for gRPC on '", options.grpc_address,
                     "': port in use, not a local address, or an unresolvable host"));
  }
  // The default health service starts with "" SERVING. Nothing can have
  // asked yet: a client still has to finish its HTTP/2 handshake, which this
  // thread's next few instructions beat by far.
  if (grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService()) {
    health->SetServingStatus("", false);
    for (const std::string& name : options.health_service_names) {
      health->SetServingStatus(name, false);
    }
  }
  const int port = IsUnixAddress(options.grpc_address) ? 0 : bound_port;
  if (!options.ports_file.empty()) {
    absl::Status written = WritePortsFile(options, port);
    if (!written.ok()) {
      server->Shutdown(std::chrono::system_clock::now());
      server->Wait();
      return written;
    }
  }
  logger.Info("server started", {{"grpc_address", options.grpc_address},
                                 {"port", port},
                                 {"metrics_port", options.metrics_port}});
  return std::unique_ptr<RunningServer>(new RunningServer(
      options, std::move(logger), std::move(server), port, std::move(health_watches)));
}

RunningServer::~RunningServer() { Shutdown(); }

void RunningServer::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  if (draining_ || serving_ == serving) return;
  serving_ = serving;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->SetServingStatus("", serving);
    for (const std::string& name : options_.health_service_names) {
      health->SetServingStatus(name, serving);
    }
  }
  logger_.Info(serving ? "serving" : "not serving");
}

bool RunningServer::serving() const {
  absl::MutexLock lock(&mu_);
  return serving_;
}

bool RunningServer::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

void RunningServer::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    draining_ = true;
    serving_ = false;
  }
  // NOT_SERVING for every name, and no later change can undo it.
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  logger_.Info("draining", {{"drain_timeout_s", absl::ToDoubleSeconds(options_.drain_timeout)},
                            {"drain_delay_s", absl::ToDoubleSeconds(options_.drain_delay)}});
  const absl::Time began = absl::Now();
  if (options_.drain_delay > absl::ZeroDuration()) absl::SleepFor(options_.drain_delay);
  // Watchers have seen NOT_SERVING; their streams would otherwise hold the
  // drain to its deadline.
  const size_t watches = health_watches_->CancelAll();
  if (watches > 0) logger_.Info("ended health watches", {{"count", watches}});
  // New calls are refused from here; calls still running at the deadline are
  // cancelled, and Shutdown returns once every handler has returned.
  server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.drain_timeout));
  server_->Wait();
  logger_.Info("server stopped", {{"drain_s", absl::ToDoubleSeconds(absl::Now() - began)}});
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void RunningServer::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

ServerOptions ServiceServerOptions(const CommonFlags& flags, absl::string_view service_name,
                                   absl::string_view default_address, absl::Duration default_drain,
                                   const logging::Logger& logger, int metrics_port) {
  ServerOptions options;
  options.service_name = std::string(service_name);
  options.grpc_address =
      flags.grpc_address.empty() ? std::string(default_address) : flags.grpc_address;
  options.drain_timeout = flags.drain_timeout.value_or(default_drain);
  options.logger = logger;
  options.ports_file = flags.ports_file;
  options.metrics_port = metrics_port;
  return options;
}

absl::Status RunServer(const ServerOptions& options, const ServerComponents& components,
                       const LifecycleHooks& hooks, RunEnvironment env) {
  // Handlers go in before the server starts, so an early SIGTERM drains too.
  std::unique_ptr<PosixSignalSource> posix_signals;
  SignalSource* signals = env.signals;
  if (signals == nullptr) {
    TIERMESH_ASSIGN_OR_RETURN(posix_signals, PosixSignalSource::Create());
    signals = posix_signals.get();
  }
  std::function<void(int)> exit_now = env.exit_now;
  if (!exit_now) exit_now = [](int code) { std::_Exit(code); };

  TIERMESH_ASSIGN_OR_RETURN(std::unique_ptr<RunningServer> server,
                            RunningServer::Start(options, components));
  const logging::Logger& logger = server->logger();
  StopLatch stop;

  std::thread signal_thread([&] {
    int received = 0;
    while (const int signal = signals->Next()) {
      if (++received == 1) {
        logger.Info("shutdown requested", {{"signal", SignalName(signal)}});
        stop.Request(absl::OkStatus());
      } else {
        logger.Error("second signal: exiting without draining",
                     {{"signal", SignalName(signal)}, {"exit_code", 128 + signal}});
        exit_now(128 + signal);
      }
    }
  });

  std::thread warm_up_thread([&] {
    absl::Status ready = hooks.warm_up ? hooks.warm_up(*server) : absl::OkStatus();
    if (!ready.ok()) {
      logger.Error("warm-up failed", {{"error", ready}});
      stop.Request(std::move(ready));
      return;
    }
    if (!server->draining()) server->SetServing(true);
  });

  absl::Status result = stop.Wait();
  server->Shutdown();
  warm_up_thread.join();
  if (hooks.on_stopped) hooks.on_stopped();
  signals->Close();
  signal_thread.join();
  return result;
}

}  // namespace tiermesh::server
