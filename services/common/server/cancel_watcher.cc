#include "services/common/server/cancel_watcher.h"

namespace tiermesh::server {

CancelWatcher::CancelWatcher(grpc::ServerContext* context, absl::Duration poll)
    : token_(std::make_shared<http::CancellationToken>()) {
  thread_ = std::thread([this, context, poll] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!done_) {
      if (context->IsCancelled()) {
        token_->Cancel();
        return;
      }
      changed_.wait_for(lock, absl::ToChronoNanoseconds(poll));
    }
  });
}

CancelWatcher::~CancelWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

}  // namespace tiermesh::server
