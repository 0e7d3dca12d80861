// tiermesh-router: the mesh's front door (RouterService). Wiring only:
// flags -> validated policy -> metrics -> breakers, budgets, clients ->
// service -> RunServer.
//
//   tiermesh-router --config deploy/config/router.yaml --grpc_address 0.0.0.0:50050
//       --metrics_address 0.0.0.0:9100          (defaults: these)
//
// A bad policy file is fatal at startup with a message naming the key and
// line. The file is watched (every 2 s): a valid change is applied to later
// requests, a bad one is logged and the serving policy stays
// (policy_reload.h). Backends' GetLoad is polled (load_poller.h) and served
// requests are remembered for escalate_from (request_history.h), as the
// policy's `load_polling` and `escalation` say (read at startup). Traces go to
// OTEL_EXPORTER_OTLP_ENDPOINT when it is set: a server span per call, a client span for the
// classifier call and one per backend attempt, traceparent passed on to each.
#include <memory>
#include <string>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

#include "services/common/config/env.h"
#include "services/common/config/file_watcher.h"
#include "services/common/config/loader.h"
#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/flags.h"
#include "services/common/server/server.h"
#include "services/common/server/tracing_interceptor.h"
#include "services/common/tracing/tracing_config.h"
#include "services/router/backend_client.h"
#include "services/router/breaker.h"
#include "services/router/budget.h"
#include "services/router/classifier_client.h"
#include "services/router/clock.h"
#include "services/router/load_poller.h"
#include "services/router/policy.h"
#include "services/router/policy_reload.h"
#include "services/router/request_history.h"
#include "services/router/retry_budget.h"
#include "services/router/router_metrics.h"
#include "services/router/router_service.h"

namespace {

constexpr char kService[] = "router";

int Run(int argc, char** argv) {
  using namespace tiermesh;          // NOLINT(google-build-using-namespace): main only
  using namespace tiermesh::router;  // NOLINT(google-build-using-namespace): main only
  const server::CommonFlags flags = server::ParseCommonFlags(
      argc, argv, kService, "tiermesh router: routes LLM requests across local and cloud tiers");

  logging::Logger logger = server::NewServiceLogger(flags, kService);

  const std::string config_path =
      flags.config_path.empty() ? "deploy/config/router.yaml" : flags.config_path;
  absl::StatusOr<std::string> policy_text = config::ReadFileToString(config_path);
  if (!policy_text.ok()) server::Fatal(kService, policy_text.status().message());
  absl::StatusOr<std::shared_ptr<const Policy>> loaded =
      ParsePolicyUpdate(*policy_text, config_path, config::ProcessEnv());
  if (!loaded.ok()) server::Fatal(kService, loaded.status().message());
  std::shared_ptr<const Policy> policy = *std::move(loaded);

  absl::StatusOr<std::unique_ptr<metrics::MetricsServer>> metrics_server =
      metrics::MetricsServer::Start(flags.metrics_address.empty() ? "0.0.0.0:9100"
                                                                  : flags.metrics_address);
  if (!metrics_server.ok()) server::Fatal(kService, metrics_server.status().message());
  absl::StatusOr<std::unique_ptr<RouterMetrics>> metrics =
      RouterMetrics::Create((*metrics_server)->registry());
  if (!metrics.ok()) server::Fatal(kService, metrics.status().message());
  RouterMetrics* router_metrics = metrics->get();

  RealClock clock;
  BreakerSet breakers(&clock,
                      [router_metrics](const std::string& backend, BreakerState, BreakerState to) {
                        router_metrics->SetCircuitOpen(backend, to == BreakerState::kOpen);
                      });
  breakers.Sync(*policy);
  for (const BackendConfig& backend : policy->backends) {
    router_metrics->SetCircuitOpen(backend.name, false);
  }
  RetryBudget retry_budget(policy->resilience.retry_budget, &clock);
  InMemoryBudgetStore budget(BudgetLimitsFromPolicy(*policy), &clock);
  GrpcClassifierClient classifier(NewMeshChannel(policy->classifier.endpoint));
  GrpcBackendClientFactory backends;
  // What escalate_from can reach back to (policy `escalation`).
  RequestHistoryOptions history_options;
  history_options.ttl = policy->escalation.history_ttl;
  history_options.max_entries = static_cast<size_t>(policy->escalation.history_max_entries);
  history_options.max_bytes = static_cast<size_t>(policy->escalation.history_max_mib) << 20;
  InMemoryRequestHistory history(history_options, &clock);
  // Every endpoint's GetLoad, for the choice of replica (policy `load_polling`).
  LoadPollerOptions poll_options;
  poll_options.interval = policy->load_polling.interval;
  poll_options.timeout = policy->load_polling.timeout;
  poll_options.max_age = policy->load_polling.max_age;
  LoadPoller loads(&backends, &clock, poll_options);
  loads.SetEndpoints(PolledEndpoints(*policy));
  loads.Start();

  absl::StatusOr<tracing::Tracer> tracer =
      tracing::NewTracerFromEnv(config::ProcessEnv(), kService, logger);
  if (!tracer.ok()) server::Fatal(kService, tracer.status().message());
  auto spans = std::make_shared<server::ServerSpans>();

  RouterDeps deps{&classifier, &backends, &breakers,     &retry_budget,
                  &budget,     &clock,    router_metrics};
  deps.loads = &loads;
  deps.history = &history;
  deps.tracer = *tracer;
  deps.server_spans = spans;
  RouterServiceImpl service(policy, deps);
  logger.Info("policy loaded", {{"version", policy->version}, {"config", config_path}});
  router_metrics->SetPolicyVersion(policy->version);

  // Hot reload: a valid new file replaces the policy; a bad one is logged and
  // the serving policy stays.
  PolicyReloader reloader(
      config_path, config::ProcessEnv(), policy,
      [&service, &loads, router_metrics](std::shared_ptr<const Policy> next) {
        const std::shared_ptr<const Policy> previous = service.policy();
        service.SetPolicy(next);
        loads.SetEndpoints(PolledEndpoints(*next));
        for (const BackendConfig& backend : next->backends) {
          if (previous->FindBackend(backend.name) == nullptr) {
            router_metrics->SetCircuitOpen(backend.name, false);
          }
        }
      },
      router_metrics, logger);
  config::FileWatcher::Options watch;
  watch.initial_content = *policy_text;
  watch.on_error = [logger](const absl::Status& error) {
    logger.Warn("policy file unreadable; the loaded policy keeps serving", {{"error", error}});
  };
  absl::StatusOr<std::unique_ptr<config::FileWatcher>> policy_watcher = config::FileWatcher::Start(
      config_path, [&reloader](const std::string& text) { (void)reloader.OnFileChanged(text); },
      watch);
  if (!policy_watcher.ok()) server::Fatal(kService, policy_watcher.status().message());

  // Requests include whole generations: give them time to finish.
  server::ServerOptions server_options = server::ServiceServerOptions(
      flags, kService, "0.0.0.0:50050", absl::Minutes(2), logger, (*metrics_server)->port());
  server_options.health_service_names = {std::string(v1::RouterService::service_full_name())};
  server::ServerComponents parts;
  parts.services = {&service};
  parts.metrics_registry = (*metrics_server)->shared_registry();
  parts.tracer = *tracer;
  parts.server_spans = spans;
  server::LifecycleHooks hooks;
  hooks.on_stopped = [&tracer] { (void)tracer->Shutdown(absl::Seconds(5)); };
  server::FatalIfError(kService, server::RunServer(server_options, parts, hooks));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
