// tiermesh-classifier: ClassifierService over gRPC. Wiring only: flags ->
// validated config -> model (hot-reloaded) -> service -> RunServer.
//
//   tiermesh-classifier [--config classifier.yaml] --grpc_address 0.0.0.0:50051
//       --metrics_address 0.0.0.0:9101          (defaults: these two addresses)
//
// Without --config: learned mode with models/classifier/default.tmcl (relative
// to the working directory). A missing or corrupt model file is fatal at
// start; later, a bad replacement is logged and the previous model keeps
// serving. Traces go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include "services/classifier/classifier.h"
#include "services/classifier/classifier_service.h"
#include "services/classifier/config.h"
#include "services/classifier/model_store.h"
#include "services/common/config/env.h"
#include "services/common/config/file_watcher.h"
#include "services/common/config/loader.h"
#include "services/common/http/http_client.h"
#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/flags.h"
#include "services/common/server/server.h"
#include "services/common/tracing/tracing_config.h"

namespace {

constexpr char kService[] = "classifier";

int Run(int argc, char** argv) {
  using namespace tiermesh;  // NOLINT(google-build-using-namespace): main only
  using classifier::ClassifierServiceConfig;
  const server::CommonFlags flags = server::ParseCommonFlags(
      argc, argv, kService, "tiermesh classifier: task type and complexity of LLM requests");

  logging::Logger logger = server::NewServiceLogger(flags, kService);

  ClassifierServiceConfig config;
  if (!flags.config_path.empty()) {
    absl::StatusOr<ClassifierServiceConfig> loaded = config::LoadConfigFile(
        flags.config_path, config::ProcessEnv(), classifier::ParseClassifierServiceConfig);
    if (!loaded.ok()) server::Fatal(kService, loaded.status().message());
    config = *std::move(loaded);
  }

  std::shared_ptr<classifier::ModelStore> models;
  std::unique_ptr<config::FileWatcher> model_watcher;
  if (config.mode == classifier::ClassifierMode::kLearned) {
    absl::StatusOr<std::unique_ptr<classifier::ModelStore>> opened =
        classifier::ModelStore::Open(config.model_path);
    if (!opened.ok()) server::Fatal(kService, opened.status().message());
    models = *std::move(opened);
    logger.Info("model loaded",
                {{"model_version", models->current()->version()}, {"path", config.model_path}});
    if (config.model_poll_interval > absl::ZeroDuration()) {
      config::FileWatcher::Options watch;
      watch.interval = config.model_poll_interval;
      watch.on_error = [logger](const absl::Status& error) {
        logger.Warn("model file unreadable; the loaded model keeps serving", {{"error", error}});
      };
      absl::StatusOr<std::unique_ptr<config::FileWatcher>> watcher = config::FileWatcher::Start(
          config.model_path,
          [models, logger](const std::string&) {
            const absl::Status reloaded = models->Reload();
            if (reloaded.ok()) {
              logger.Info("model reloaded", {{"model_version", models->current()->version()}});
            } else {
              logger.Error("model reload refused; the previous model keeps serving",
                           {{"error", reloaded}});
            }
          },
          watch);
      if (!watcher.ok()) server::Fatal(kService, watcher.status().message());
      model_watcher = *std::move(watcher);
    }
  } else {
    logger.Info("heuristic mode: keyword rules, no model");
  }
  auto classifier = std::make_shared<const classifier::Classifier>(config.options(), models);

  absl::StatusOr<tracing::TracingConfig> tracing_config =
      tracing::TracingConfigFromEnv(config::ProcessEnv(), kService);
  if (!tracing_config.ok()) server::Fatal(kService, tracing_config.status().message());
  std::shared_ptr<http::HttpTransport> transport;
  if (tracing_config->enabled) {
    absl::StatusOr<std::unique_ptr<http::HttpTransport>> curl =
        http::NewCurlHttpTransport(http::CurlTransportOptions{});
    if (!curl.ok()) server::Fatal(kService, curl.status().message());
    transport = *std::move(curl);
  }
  absl::StatusOr<tracing::Tracer> tracer = tracing::NewTracer(*tracing_config, transport, logger);
  if (!tracer.ok()) server::Fatal(kService, tracer.status().message());

  absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics = metrics::MetricsServer::Start(
      flags.metrics_address.empty() ? "0.0.0.0:9101" : flags.metrics_address);
  if (!metrics.ok()) server::Fatal(kService, metrics.status().message());
  auto spans = std::make_shared<server::ServerSpans>();
  absl::StatusOr<std::unique_ptr<classifier::ClassifierServiceImpl>> service =
      classifier::ClassifierServiceImpl::Create(classifier, &(*metrics)->registry(), spans);
  if (!service.ok()) server::Fatal(kService, service.status().message());

  server::ServerOptions server_options = server::ServiceServerOptions(
      flags, kService, "0.0.0.0:50051", absl::Seconds(10), logger, (*metrics)->port());
  server_options.health_service_names = {std::string(v1::ClassifierService::service_full_name())};
  // Let oversized requests reach the handler, which refuses them with a clear
  // INVALID_ARGUMENT instead of gRPC's RESOURCE_EXHAUSTED.
  const int max_message =
      static_cast<int>(std::max<int64_t>(4 << 20, config.max_request_bytes * 2 + (64 << 10)));
  server_options.configure_builder = [max_message](grpc::ServerBuilder& builder) {
    builder.SetMaxReceiveMessageSize(max_message);
  };
  server::ServerComponents parts;
  parts.services = {service->get()};
  parts.metrics_registry = (*metrics)->shared_registry();
  parts.tracer = *tracer;
  parts.server_spans = spans;
  server::LifecycleHooks hooks;
  hooks.on_stopped = [&tracer] { (void)tracer->Shutdown(absl::Seconds(5)); };
  server::FatalIfError(kService, server::RunServer(server_options, parts, hooks));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
