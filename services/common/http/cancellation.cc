#include "services/common/http/cancellation.h"

#include <utility>

namespace tiermesh::http {

CancellationToken::Registration::Registration(Registration&& other) noexcept
    : token_(other.token_), id_(other.id_) {
  other.token_ = nullptr;
}

CancellationToken::Registration& CancellationToken::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    Reset();
    token_ = other.token_;
    id_ = other.id_;
    other.token_ = nullptr;
  }
  return *this;
}

CancellationToken::Registration::~Registration() { Reset(); }

void CancellationToken::Registration::Reset() {
  if (token_ != nullptr) token_->Unregister(id_);
  token_ = nullptr;
}

void CancellationToken::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
  // Run under the lock: Unregister() then waits for a running callback, which
  // is what lets a Registration's owner free what the callback captured.
  for (auto& entry : callbacks_) entry.second();
  callbacks_.clear();
}

CancellationToken::Registration CancellationToken::OnCancel(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_.load(std::memory_order_acquire)) {
    callback();
    return Registration();
  }
  const uint64_t id = next_id_++;
  callbacks_.emplace(id, std::move(callback));
  return Registration(this, id);
}

void CancellationToken::Unregister(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  callbacks_.erase(id);
}

}  // namespace tiermesh::http
