#include "services/common/server/cancel_watcher.h"

#include <utility>
#include <vector>

namespace tiermesh::server {

CancelPoller::CancelPoller(absl::Duration poll_interval)
    : poll_interval_(poll_interval), thread_([this] { Loop(); }) {}

CancelPoller::~CancelPoller() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

uint64_t CancelPoller::Add(grpc::ServerContext* context,
                           std::shared_ptr<http::CancellationToken> token) {
  uint64_t id;
  bool was_idle;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_id_++;
    was_idle = watched_.empty();
    watched_.emplace(id, Watched{context, std::move(token)});
  }
  if (was_idle) changed_.notify_all();
  return id;
}

void CancelPoller::Remove(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  watched_.erase(id);
}

void CancelPoller::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (watched_.empty()) {
      changed_.wait(lock, [this] { return stopping_ || !watched_.empty(); });
      continue;
    }
    // IsCancelled() is a cheap atomic read; Cancel() runs the token's callbacks (which abort
    // HTTP requests) and is done under our lock so that a watcher cannot go away meanwhile.
    for (auto it = watched_.begin(); it != watched_.end();) {
      if (it->second.context->IsCancelled()) {
        it->second.token->Cancel();
        it = watched_.erase(it);
      } else {
        ++it;
      }
    }
    changed_.wait_for(lock, absl::ToChronoNanoseconds(poll_interval_));
  }
}

CancelWatcher::CancelWatcher(CancelPoller* poller, grpc::ServerContext* context)
    : poller_(poller),
      token_(std::make_shared<http::CancellationToken>()),
      id_(poller->Add(context, token_)) {}

CancelWatcher::~CancelWatcher() { poller_->Remove(id_); }

}  // namespace tiermesh::server
