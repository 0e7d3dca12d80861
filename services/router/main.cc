// tiermesh-router: the mesh's front door (RouterService). Wiring only:
// flags -> validated policy -> metrics -> breakers, budgets, clients ->
// service -> RunServer.
//
//   tiermesh-router --config deploy/config/router.yaml --grpc_address 0.0.0.0:50050
//       --metrics_address 0.0.0.0:9100          (defaults: these)
//
// A bad policy file is fatal at startup with a message naming the key and
// line. The policy is read once (hot reload is not wired yet).
#include <memory>
#include <string>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

#include "services/common/config/env.h"
#include "services/common/config/loader.h"
#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/flags.h"
#include "services/common/server/server.h"
#include "services/router/backend_client.h"
#include "services/router/breaker.h"
#include "services/router/budget.h"
#include "services/router/classifier_client.h"
#include "services/router/clock.h"
#include "services/router/policy.h"
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

  logging::LoggerOptions log_options;
  log_options.service = kService;
  if (!flags.log_level.empty()) {
    absl::StatusOr<logging::Level> level = logging::ParseLevel(flags.log_level);
    if (!level.ok()) server::Fatal(kService, level.status().message());
    log_options.level = *level;
  }
  logging::Logger logger(log_options);

  const std::string config_path =
      flags.config_path.empty() ? "deploy/config/router.yaml" : flags.config_path;
  absl::StatusOr<Policy> loaded =
      config::LoadConfigFile(config_path, config::ProcessEnv(), ParsePolicy);
  if (!loaded.ok()) server::Fatal(kService, loaded.status().message());
  auto policy = std::make_shared<const Policy>(*std::move(loaded));

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
  GrpcClassifierClient classifier(
      grpc::CreateChannel(policy->classifier.endpoint, grpc::InsecureChannelCredentials()));
  GrpcBackendClientFactory backends;

  RouterServiceImpl service(policy, RouterDeps{&classifier, &backends, &breakers, &retry_budget,
                                               &budget, &clock, router_metrics});
  logger.Info("policy loaded", {{"version", policy->version}, {"config", config_path}});

  server::ServerOptions server_options;
  server_options.service_name = kService;
  server_options.grpc_address = flags.grpc_address.empty() ? "0.0.0.0:50050" : flags.grpc_address;
  // Requests include whole generations: give them time to finish.
  server_options.drain_timeout = flags.drain_timeout.value_or(absl::Minutes(2));
  server_options.health_service_names = {std::string(v1::RouterService::service_full_name())};
  server_options.logger = logger;
  server::ServerComponents parts;
  parts.services = {&service};
  parts.metrics_registry = (*metrics_server)->shared_registry();
  server::FatalIfError(kService, server::RunServer(server_options, parts));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
