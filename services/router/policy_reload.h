// Policy hot reload: when the policy file changes (config::FileWatcher), the
// new text is parsed and validated exactly as at startup; a valid policy is
// handed to `apply` (RouterServiceImpl::SetPolicy and friends) and becomes the
// version in every later decision and in tiermesh_router_policy_info; an
// invalid one is rejected with one clear log line (the key path and line, as
// at startup) and the old policy keeps serving. In-flight requests finish
// with the policy they started with.
//
//   PolicyReloader reloader(path, config::ProcessEnv(), policy->version,
//                           [&](std::shared_ptr<const Policy> p) { service.SetPolicy(p); },
//                           metrics, logger);
//   config::FileWatcher::Start(path, [&](const std::string& text) {
//     (void)reloader.OnFileChanged(text);
//   }, options);
//
// Not reloaded: the classifier endpoint (its channel is made at startup),
// `escalation` and `load_polling` (the history and the poller are built at
// startup); a change to them is logged as needing a restart, the rest of the
// policy applies.
#ifndef TIERMESH_SERVICES_ROUTER_POLICY_RELOAD_H_
#define TIERMESH_SERVICES_ROUTER_POLICY_RELOAD_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "services/common/config/env.h"
#include "services/common/logging/logger.h"
#include "services/router/policy.h"
#include "services/router/router_metrics.h"

namespace tiermesh::router {

// The new policy in `text` (named `source` in errors), parsed and validated
// with ${VAR} expansion from `env`. The error names the key and line.
[[nodiscard]] absl::StatusOr<std::shared_ptr<const Policy>> ParsePolicyUpdate(
    absl::string_view text, absl::string_view source, const config::EnvLookup& env);

class PolicyReloader {
 public:
  using Apply = std::function<void(std::shared_ptr<const Policy>)>;

  // `metrics` may be null. `current` is the policy serving now.
  PolicyReloader(std::string source, config::EnvLookup env, std::shared_ptr<const Policy> current,
                 Apply apply, RouterMetrics* metrics, logging::Logger logger);

  // Parses `text`; applies it when valid and different from the serving
  // version (OK either way), else logs, counts a rejection and returns the
  // error. Thread-safe (calls are serialized).
  absl::Status OnFileChanged(const std::string& text);

  std::shared_ptr<const Policy> current() const;

 private:
  const std::string source_;
  const config::EnvLookup env_;
  const Apply apply_;
  RouterMetrics* const metrics_;
  const logging::Logger logger_;
  mutable std::mutex mu_;
  std::shared_ptr<const Policy> current_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_POLICY_RELOAD_H_
