// Turns "the gRPC client of this call went away" into a CancellationToken that outgoing HTTP
// calls carry, so that llama-server or a provider stops working for nobody at once. Sync gRPC
// handlers get no callback when their client leaves, so a poller thread checks
// ServerContext::IsCancelled() (which also turns true when the call's deadline passes) of every
// watched call. One CancelPoller per service (one thread for all calls, asleep when none is
// watched), one CancelWatcher per call:
//
//   CancelPoller poller(absl::Milliseconds(10));          // a member of the service
//   ...
//   CancelWatcher watcher(&poller, context);              // in the handler
//   request.cancel = watcher.token();
//   transport->Fetch(request);   // aborted within ~10 ms of the client leaving
#ifndef TIERMESH_SERVICES_COMMON_SERVER_CANCEL_WATCHER_H_
#define TIERMESH_SERVICES_COMMON_SERVER_CANCEL_WATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "grpcpp/server_context.h"

#include "services/common/http/cancellation.h"

namespace tiermesh::server {

class CancelPoller {
 public:
  explicit CancelPoller(absl::Duration poll_interval = absl::Milliseconds(10));
  // Stops the thread; every watcher must be gone by then.
  ~CancelPoller();
  CancelPoller(const CancelPoller&) = delete;
  CancelPoller& operator=(const CancelPoller&) = delete;

 private:
  friend class CancelWatcher;
  struct Watched {
    grpc::ServerContext* context;
    std::shared_ptr<http::CancellationToken> token;
  };
  uint64_t Add(grpc::ServerContext* context, std::shared_ptr<http::CancellationToken> token);
  void Remove(uint64_t id);
  void Loop();

  const absl::Duration poll_interval_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;                // guarded by mu_
  uint64_t next_id_ = 1;                 // guarded by mu_
  std::map<uint64_t, Watched> watched_;  // guarded by mu_
  std::thread thread_;
};

class CancelWatcher {
 public:
  // Watches `context` until destroyed. `poller` must outlive the watcher.
  CancelWatcher(CancelPoller* poller, grpc::ServerContext* context);
  ~CancelWatcher();
  CancelWatcher(const CancelWatcher&) = delete;
  CancelWatcher& operator=(const CancelWatcher&) = delete;

  const std::shared_ptr<http::CancellationToken>& token() const { return token_; }

 private:
  CancelPoller* poller_;
  std::shared_ptr<http::CancellationToken> token_;
  uint64_t id_;
};

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_CANCEL_WATCHER_H_
