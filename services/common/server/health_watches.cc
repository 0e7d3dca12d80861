#include "services/common/server/health_watches.h"

#include <cstring>
#include <utility>
#include <vector>

namespace tiermesh::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class HealthWatchInterceptor final : public grpc::experimental::Interceptor {
 public:
  HealthWatchInterceptor(HealthWatches* watches, grpc::ServerContextBase* context)
      : watches_(watches), context_(context) {}
  ~HealthWatchInterceptor() override { watches_->Destroyed(context_); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // The first hook of a server call; the call is bound to its context by
    // now, so TryCancel can reach it.
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      watches_->Started(context_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      watches_->Finished(context_);
    }
    methods->Proceed();
  }

 private:
  HealthWatches* const watches_;
  grpc::ServerContextBase* const context_;
};

class HealthWatchInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit HealthWatchInterceptorFactory(std::shared_ptr<HealthWatches> watches)
      : watches_(std::move(watches)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    if (info->method() == nullptr || std::strcmp(info->method(), kHealthWatchMethod) != 0 ||
        info->server_context() == nullptr) {
      return nullptr;
    }
    return new HealthWatchInterceptor(watches_.get(), info->server_context());
  }

 private:
  std::shared_ptr<HealthWatches> watches_;
};

}  // namespace

void HealthWatches::Started(grpc::ServerContextBase* context) {
  absl::MutexLock lock(&mu_);
  calls_[context] = Entry();
}

void HealthWatches::Finished(grpc::ServerContextBase* context) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(context);
  if (it != calls_.end()) it->second.finished = true;
}

void HealthWatches::Destroyed(grpc::ServerContextBase* context) {
  absl::MutexLock lock(&mu_);
  if (canceller_ != std::this_thread::get_id()) {
    auto idle = [this, context]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto it = calls_.find(context);
      return it == calls_.end() || !it->second.busy;
    };
    mu_.Await(absl::Condition(&idle));
  }
  calls_.erase(context);
}

size_t HealthWatches::size() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

size_t HealthWatches::CancelAll() {
  std::vector<grpc::ServerContextBase*> pending;
  {
    absl::MutexLock lock(&mu_);
    canceller_ = std::this_thread::get_id();
    for (const auto& [context, entry] : calls_) {
      if (!entry.finished) pending.push_back(context);
    }
  }
  size_t cancelled = 0;
  for (grpc::ServerContextBase* context : pending) {
    {
      absl::MutexLock lock(&mu_);
      auto it = calls_.find(context);
      if (it == calls_.end() || it->second.finished) continue;
      it->second.busy = true;
    }
    // Not under mu_: TryCancel may run this call's callbacks inline, and
    // they come back here (Finished, even Destroyed).
    context->TryCancel();
    ++cancelled;
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(context);
    if (it != calls_.end()) it->second.busy = false;
  }
  absl::MutexLock lock(&mu_);
  canceller_ = std::thread::id();
  return cancelled;
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewHealthWatchInterceptorFactory(std::shared_ptr<HealthWatches> watches) {
  return std::make_unique<HealthWatchInterceptorFactory>(std::move(watches));
}

}  // namespace tiermesh::server
