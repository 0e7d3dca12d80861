// tiermesh-worker: the local-inference tier (InferenceService + ModelService over llama-server).
// Wiring only: flags -> validated config -> HTTP transport -> metrics, GPU probe -> model
// manager -> services -> RunServer (warm-up loads the default model; health follows it).
//
//   tiermesh-worker --config deploy/config/worker.yaml --grpc_address 0.0.0.0:50052
//       --metrics_address 0.0.0.0:9462          (defaults: these)
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"

#include "services/common/config/env.h"
#include "services/common/config/loader.h"
#include "services/common/http/http_client.h"
#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/flags.h"
#include "services/common/server/server.h"
#include "services/common/tracing/tracing_config.h"
#include "services/worker/config.h"
#include "services/worker/gpu.h"
#include "services/worker/inference_service.h"
#include "services/worker/model_manager.h"
#include "services/worker/worker_metrics.h"

namespace {

constexpr char kService[] = "worker";

int Run(int argc, char** argv) {
  using namespace tiermesh;          // NOLINT(google-build-using-namespace): main only
  using namespace tiermesh::worker;  // NOLINT(google-build-using-namespace): main only
  const server::CommonFlags flags = server::ParseCommonFlags(
      argc, argv, kService, "tiermesh worker: local inference over llama-server");

  logging::Logger logger = server::NewServiceLogger(flags, kService);

  const std::string config_path =
      flags.config_path.empty() ? "deploy/config/worker.yaml" : flags.config_path;
  absl::StatusOr<WorkerConfig> config =
      config::LoadConfigFile(config_path, config::ProcessEnv(), ParseWorkerConfig);
  if (!config.ok()) server::Fatal(kService, config.status().message());

  // llama-server is local: never through a proxy.
  absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport = http::NewLoopbackHttpTransport();
  if (!transport.ok()) server::Fatal(kService, transport.status().message());

  absl::StatusOr<tracing::Tracer> tracer =
      tracing::NewTracerFromEnv(config::ProcessEnv(), kService, logger);
  if (!tracer.ok()) server::Fatal(kService, tracer.status().message());

  absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics_server =
      metrics::MetricsServer::Start(flags.metrics_address.empty() ? "0.0.0.0:9462"
                                                                  : flags.metrics_address);
  if (!metrics_server.ok()) server::Fatal(kService, metrics_server.status().message());
  absl::StatusOr<std::unique_ptr<WorkerMetrics>> metrics =
      WorkerMetrics::Create((*metrics_server)->registry());
  if (!metrics.ok()) server::Fatal(kService, metrics.status().message());

  absl::StatusOr<std::unique_ptr<GpuProbe>> gpu = OpenNvmlProbe();
  if (!gpu.ok()) logger.Info(absl::StrCat("no GPU metrics: ", gpu.status().message()));

  server::RunningServer* running = nullptr;  // set by warm_up, read by the readiness callback
  ModelManagerOptions manager_options;
  manager_options.transport = transport->get();
  manager_options.logger = logger;
  manager_options.on_restart = [&](const std::string& model) { (*metrics)->RecordRestart(model); };
  manager_options.on_default_ready = [&](bool ready) {
    (*metrics)->SetReady(ready);
    if (running != nullptr) running->SetServing(ready);
  };
  manager_options.on_scrape = [&](const std::vector<ModelSnapshot>& models) {
    (*metrics)->UpdateModels(models);
    if (gpu.ok()) {
      absl::StatusOr<std::vector<GpuSample>> samples = (*gpu)->Sample();
      if (samples.ok()) (*metrics)->UpdateGpus(*samples);
    }
  };
  absl::StatusOr<std::unique_ptr<ModelManager>> manager =
      ModelManager::Create(*config, manager_options);
  if (!manager.ok()) server::Fatal(kService, manager.status().message());

  auto spans = std::make_shared<server::ServerSpans>();
  WorkerServiceOptions service_options;
  service_options.stream_idle_timeout = config->stream_idle_timeout;
  service_options.tracer = *tracer;
  service_options.server_spans = spans;
  WorkerInferenceService inference(manager->get(), metrics->get(), service_options);
  WorkerModelService models(manager->get());

  server::ServerOptions server_options = server::ServiceServerOptions(
      flags, kService, "0.0.0.0:50052", absl::Minutes(2), logger, (*metrics_server)->port());
  server_options.health_service_names = {std::string(v1::InferenceService::service_full_name()),
                                         std::string(v1::ModelService::service_full_name())};
  server::ServerComponents parts;
  parts.services = {&inference, &models};
  parts.metrics_registry = (*metrics_server)->shared_registry();
  parts.tracer = *tracer;
  parts.server_spans = spans;
  server::LifecycleHooks hooks;
  // SERVING once the default model answers /health with 200; from then on health follows it.
  hooks.warm_up = [&](server::RunningServer& server) -> absl::Status {
    running = &server;
    (*manager)->Start();
    const ModelConfig* default_model = config->Find(config->default_model);
    const absl::Duration wait = default_model->managed
                                    ? default_model->managed_config.load_timeout + absl::Seconds(5)
                                    : absl::Minutes(10);
    absl::Status loaded =
        (*manager)->Load(config->default_model, /*wait=*/true, absl::Now() + wait);
    if (!loaded.ok()) {
      return absl::Status(loaded.code(), absl::StrCat("default model ", config->default_model,
                                                      ": ", loaded.message()));
    }
    return absl::OkStatus();
  };
  hooks.on_stopped = [&] {
    (*manager)->Shutdown();
    (void)tracer->Shutdown(absl::Seconds(5));
  };
  server::FatalIfError(kService, server::RunServer(server_options, parts, hooks));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
