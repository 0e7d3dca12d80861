// tiermesh-cloud-proxy: the InferenceService over cloud providers. Wiring only:
// flags -> validated config -> keys -> HTTP transport -> service -> RunServer.
//
//   tiermesh-cloud-proxy --config cloud-proxy.yaml --grpc_address 0.0.0.0:50053
//       --metrics_address 0.0.0.0:9103     (defaults: these two addresses)
//
// Without --config (or with no provider in it) the proxy still starts: it is
// offline, reports every model unavailable and answers UNAVAILABLE. A provider
// whose key variable/file is missing is unavailable too; the others serve.
// Traces go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set: a server span per
// call and a client span per upstream call; traceparent goes to providers.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

#include "services/cloud_proxy/config.h"
#include "services/cloud_proxy/inference_service.h"
#include "services/common/config/env.h"
#include "services/common/config/loader.h"
#include "services/common/http/http_client.h"
#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/flags.h"
#include "services/common/server/server.h"
#include "services/common/tracing/tracing_config.h"

namespace {

constexpr char kService[] = "cloud-proxy";

int Run(int argc, char** argv) {
  using namespace tiermesh;  // NOLINT(google-build-using-namespace): main only
  const server::CommonFlags flags = server::ParseCommonFlags(
      argc, argv, kService, "tiermesh cloud-proxy: InferenceService over cloud LLM providers");

  logging::Logger logger = server::NewServiceLogger(flags, kService);

  cloud::CloudConfig config;
  if (!flags.config_path.empty()) {
    // Not LoadConfigFile: ${VAR} keys must stay names (see config.h).
    absl::StatusOr<std::string> text = config::ReadFileToString(flags.config_path);
    if (!text.ok()) server::Fatal(kService, text.status().message());
    absl::StatusOr<cloud::CloudConfig> parsed = cloud::ParseCloudConfig(*text, flags.config_path);
    if (!parsed.ok()) server::Fatal(kService, parsed.status().message());
    config = *std::move(parsed);
  }

  absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport =
      http::NewCurlHttpTransport(http::CurlTransportOptions{});
  if (!transport.ok()) server::Fatal(kService, transport.status().message());

  absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics = metrics::MetricsServer::Start(
      flags.metrics_address.empty() ? "0.0.0.0:9103" : flags.metrics_address);
  if (!metrics.ok()) server::Fatal(kService, metrics.status().message());

  absl::StatusOr<tracing::Tracer> tracer =
      tracing::NewTracerFromEnv(config::ProcessEnv(), kService, logger);
  if (!tracer.ok()) server::Fatal(kService, tracer.status().message());

  cloud::CloudServiceOptions options;
  options.transport = transport->get();
  options.tracer = *tracer;
  options.metrics_registry = &(*metrics)->registry();
  options.logger = logger;
  absl::StatusOr<std::unique_ptr<cloud::CloudInferenceService>> service =
      cloud::CloudInferenceService::Create(config, config::ProcessEnv(), cloud::ReadFileToString,
                                           options);
  if (!service.ok()) server::Fatal(kService, service.status().message());
  if (!(*service)->ready()) {
    logger.Warn("no provider has a key: the cloud-proxy is offline (models unavailable)");
  }

  // Long generations need time to finish when draining.
  server::ServerOptions server_options = server::ServiceServerOptions(
      flags, kService, "0.0.0.0:50053", absl::Minutes(2), logger, (*metrics)->port());
  server_options.health_service_names = {std::string(v1::InferenceService::service_full_name())};
  server::ServerComponents parts;
  parts.services = {service->get()};
  parts.metrics_registry = (*metrics)->shared_registry();
  parts.tracer = *tracer;
  server::LifecycleHooks hooks;
  hooks.on_stopped = [&tracer] { (void)tracer->Shutdown(absl::Seconds(5)); };
  server::FatalIfError(kService, server::RunServer(server_options, parts, hooks));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
