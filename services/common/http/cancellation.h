// A thread-safe, one-shot cancellation signal that travels with an outgoing
// call (an HTTP request to llama-server or a provider), so that a cancelled
// gRPC call stops the upstream work at once instead of at its next timeout.
//
//   auto cancel = std::make_shared<tiermesh::http::CancellationToken>();
//   request.cancel = cancel;
//   // on another thread, e.g. when the gRPC client goes away:
//   cancel->Cancel();
//
// Code that blocks can be woken up: OnCancel() registers a callback that runs
// once, on the thread that calls Cancel(). The returned Registration removes it
// on destruction and guarantees that, once destroyed, the callback is neither
// running nor will run, so the callback may capture things that die with it.
#ifndef TIERMESH_SERVICES_COMMON_HTTP_CANCELLATION_H_
#define TIERMESH_SERVICES_COMMON_HTTP_CANCELLATION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>

namespace tiermesh::http {

class CancellationToken {
 public:
  // Unregisters its callback when destroyed. Must not outlive the token.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration();

   private:
    friend class CancellationToken;
    Registration(CancellationToken* token, uint64_t id) : token_(token), id_(id) {}
    void Reset();

    CancellationToken* token_ = nullptr;
    uint64_t id_ = 0;
  };

  CancellationToken() = default;
  CancellationToken(const CancellationToken&) = delete;
  CancellationToken& operator=(const CancellationToken&) = delete;

  // Idempotent. Runs the registered callbacks (only on the first call).
  void Cancel();
  bool IsCancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // Runs `callback` when Cancel() is called, or right away (on this thread) if
  // it already was. The callback runs under the token's lock: it must be quick
  // and must not call back into this token.
  [[nodiscard]] Registration OnCancel(std::function<void()> callback);

 private:
  void Unregister(uint64_t id);

  std::atomic<bool> cancelled_{false};
  // std::mutex rather than absl::Mutex: the distribution's libabsl is not
  // built for ThreadSanitizer, which then cannot see absl::Mutex ordering.
  std::mutex mu_;
  uint64_t next_id_ = 1;                                 // guarded by mu_
  std::map<uint64_t, std::function<void()>> callbacks_;  // guarded by mu_
};

}  // namespace tiermesh::http

#endif  // TIERMESH_SERVICES_COMMON_HTTP_CANCELLATION_H_
