// Turns "the gRPC client of this call went away" into a CancellationToken that outgoing HTTP
// calls carry, so that llama-server or a provider stops working for nobody at once. Sync gRPC
// handlers get no callback when their client leaves, so a helper thread polls
// ServerContext::IsCancelled() (which also turns true when the call's deadline passes).
//
//   CancelWatcher watcher(context, absl::Milliseconds(10));
//   request.cancel = watcher.token();
//   transport->Fetch(request);   // aborted within ~10 ms of the client leaving
#ifndef TIERMESH_SERVICES_COMMON_SERVER_CANCEL_WATCHER_H_
#define TIERMESH_SERVICES_COMMON_SERVER_CANCEL_WATCHER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/time/time.h"
#include "grpcpp/server_context.h"

#include "services/common/http/cancellation.h"

namespace tiermesh::server {

class CancelWatcher {
 public:
  CancelWatcher(grpc::ServerContext* context, absl::Duration poll);
  // Stops polling (the token stays as it is).
  ~CancelWatcher();
  CancelWatcher(const CancelWatcher&) = delete;
  CancelWatcher& operator=(const CancelWatcher&) = delete;

  const std::shared_ptr<http::CancellationToken>& token() const { return token_; }

 private:
  std::shared_ptr<http::CancellationToken> token_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool done_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_CANCEL_WATCHER_H_
