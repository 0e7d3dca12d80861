#include "services/router/policy_reload.h"

#include <utility>

#include "services/common/config/loader.h"

namespace tiermesh::router {

absl::StatusOr<std::shared_ptr<const Policy>> ParsePolicyUpdate(absl::string_view text,
                                                                absl::string_view source,
                                                                const config::EnvLookup& env) {
  absl::StatusOr<Policy> parsed = config::LoadConfigText(text, source, env, ParsePolicy);
  if (!parsed.ok()) return parsed.status();
  return std::make_shared<const Policy>(*std::move(parsed));
}

PolicyReloader::PolicyReloader(std::string source, config::EnvLookup env,
                               std::shared_ptr<const Policy> current, Apply apply,
                               RouterMetrics* metrics, logging::Logger logger)
    : source_(std::move(source)),
      env_(std::move(env)),
      apply_(std::move(apply)),
      metrics_(metrics),
      logger_(std::move(logger)),
      current_(std::move(current)) {}

absl::Status PolicyReloader::OnFileChanged(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<const Policy>> next = ParsePolicyUpdate(text, source_, env_);
  if (!next.ok()) {
    logger_.Error("policy reload rejected; the previous policy keeps serving",
                  {{"error", next.status()}, {"version", current_->version}});
    if (metrics_ != nullptr) metrics_->RecordPolicyReload("rejected");
    return next.status();
  }
  if ((*next)->version == current_->version) return absl::OkStatus();  // same content
  if ((*next)->classifier.endpoint != current_->classifier.endpoint) {
    logger_.Warn("classifier.endpoint changed: it takes effect after a restart",
                 {{"new_endpoint", (*next)->classifier.endpoint},
                  {"serving_endpoint", current_->classifier.endpoint}});
  }
  const EscalationSettings& e0 = current_->escalation;
  const EscalationSettings& e1 = (*next)->escalation;
  const LoadPollingSettings& l0 = current_->load_polling;
  const LoadPollingSettings& l1 = (*next)->load_polling;
  if (e0.history_ttl != e1.history_ttl || e0.history_max_entries != e1.history_max_entries ||
      e0.history_max_mib != e1.history_max_mib || l0.interval != l1.interval ||
      l0.timeout != l1.timeout || l0.max_age != l1.max_age) {
    logger_.Warn("escalation or load_polling changed: it takes effect after a restart");
  }
  apply_(*next);
  logger_.Info("policy reloaded",
               {{"version", (*next)->version}, {"previous_version", current_->version}});
  current_ = *std::move(next);
  if (metrics_ != nullptr) {
    metrics_->RecordPolicyReload("ok");
    metrics_->SetPolicyVersion(current_->version);
  }
  return absl::OkStatus();
}

std::shared_ptr<const Policy> PolicyReloader::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

}  // namespace tiermesh::router
