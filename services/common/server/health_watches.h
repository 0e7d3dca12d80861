// Ends grpc.health.v1.Health/Watch streams when a server drains.
//
// gRPC's default health service answers a Watch with NOT_SERVING when the
// server shuts down but never ends the stream, so one watcher (gRPC's
// client-side health checking uses Watch) holds every drain for the full
// drain timeout. An interceptor records the Watch calls in flight, and
// RunningServer::Shutdown cancels them (after the watchers got NOT_SERVING)
// so that only real work is waited for.
//
//   auto watches = std::make_shared<HealthWatches>();
//   factories.push_back(NewHealthWatchInterceptorFactory(watches));
//   ... on shutdown, after the health service went NOT_SERVING:
//   watches->CancelAll();
#ifndef TIERMESH_SERVICES_COMMON_SERVER_HEALTH_WATCHES_H_
#define TIERMESH_SERVICES_COMMON_SERVER_HEALTH_WATCHES_H_

#include <cstddef>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_interceptor.h"

namespace tiermesh::server {

inline constexpr char kHealthWatchMethod[] = "/grpc.health.v1.Health/Watch";

// The Watch calls in flight. Thread-safe.
//
// Lifetime rule: a call's context stays valid until its interceptor is
// destroyed, so CancelAll marks a call "busy" while it cancels it and the
// interceptor's destructor waits for that. TryCancel may run the call's
// callbacks inline (the health service's reactor finishing, even its
// teardown); on the cancelling thread nothing waits, and TryCancel no longer
// touches the call once those inline callbacks run.
class HealthWatches {
 public:
  // Cancels every Watch call that has not finished. Returns how many.
  size_t CancelAll();
  size_t size() const;

  // Interceptor side.
  void Started(grpc::ServerContextBase* context);
  void Finished(grpc::ServerContextBase* context);  // its status is being sent
  void Destroyed(grpc::ServerContextBase* context);

 private:
  struct Entry {
    bool finished = false;
    bool busy = false;
  };
  mutable absl::Mutex mu_;
  absl::flat_hash_map<grpc::ServerContextBase*, Entry> calls_ ABSL_GUARDED_BY(mu_);
  std::thread::id canceller_ ABSL_GUARDED_BY(mu_);
};

// Intercepts only kHealthWatchMethod calls. Put it FIRST among the
// interceptors: TryCancel runs every interceptor of the call, and the first
// one is destroyed first, so waiting in its destructor keeps the others
// alive while TryCancel uses them.
[[nodiscard]] std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
NewHealthWatchInterceptorFactory(std::shared_ptr<HealthWatches> watches);

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_HEALTH_WATCHES_H_
