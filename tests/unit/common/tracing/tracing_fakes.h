// Fakes shared by the tracing tests: predictable ids, a settable clock, a
// processor that keeps what it gets, and an exporter whose calls can be
// blocked, failed and counted.
#ifndef TIERMESH_TESTS_UNIT_COMMON_TRACING_TRACING_FAKES_H_
#define TIERMESH_TESTS_UNIT_COMMON_TRACING_TRACING_FAKES_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "services/common/http/http_client.h"
#include "services/common/tracing/exporter.h"
#include "services/common/tracing/id_generator.h"

namespace tiermesh::tracing::testing {

// Ids 1, 2, 3, ... (trace ids and span ids counted separately).
class SequentialIdGenerator final : public IdGenerator {
 public:
  TraceId NewTraceId() override {
    absl::MutexLock lock(&mu_);
    std::array<uint8_t, 16> bytes{};
    bytes[15] = static_cast<uint8_t>(++traces_);
    bytes[0] = 0xaa;
    return TraceId(bytes);
  }
  SpanId NewSpanId() override {
    absl::MutexLock lock(&mu_);
    std::array<uint8_t, 8> bytes{};
    bytes[7] = static_cast<uint8_t>(++spans_);
    return SpanId(bytes);
  }

 private:
  absl::Mutex mu_;
  int traces_ ABSL_GUARDED_BY(mu_) = 0;
  int spans_ ABSL_GUARDED_BY(mu_) = 0;
};

class FakeClock {
 public:
  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  std::function<absl::Time()> AsFunction() {
    return [this] { return Now(); };
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::FromUnixSeconds(1700000000);
};

class CapturingProcessor final : public SpanProcessor {
 public:
  void OnEnd(SpanData span) override {
    absl::MutexLock lock(&mu_);
    spans_.push_back(std::move(span));
  }
  absl::Status ForceFlush(absl::Duration) override { return absl::OkStatus(); }
  absl::Status Shutdown(absl::Duration) override { return absl::OkStatus(); }
  SpanProcessorStats Stats() const override { return {}; }
  std::vector<SpanData> Spans() const {
    absl::MutexLock lock(&mu_);
    return spans_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<SpanData> spans_ ABSL_GUARDED_BY(mu_);
};

// Records batch sizes; can hold every Export until Release(), and fail.
// Owned by the processor under test, so tests keep a raw pointer to it.
class FakeExporter final : public SpanExporter {
 public:
  absl::Status Export(const std::vector<SpanData>& spans) override {
    absl::MutexLock lock(&mu_);
    ++calls_in_progress_;
    mu_.Await(absl::Condition(
        +[](bool* blocked) { return !*blocked; }, &blocked_));
    --calls_in_progress_;
    batches_.push_back(spans.size());
    for (const SpanData& span : spans) names_.push_back(span.name);
    return fail_ ? absl::UnavailableError("collector down") : absl::OkStatus();
  }

  void Block() {
    absl::MutexLock lock(&mu_);
    blocked_ = true;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    blocked_ = false;
  }
  void Fail(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  // Waits (bounded) until an Export call is blocked inside.
  bool WaitUntilBlockedInExport(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](int* n) { return *n > 0; }, &calls_in_progress_),
                                timeout);
  }
  // Waits (bounded) until `n` spans were exported in total.
  bool WaitForSpans(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    waiting_for_ = n;
    return mu_.AwaitWithTimeout(absl::Condition(this, &FakeExporter::HasEnoughLocked), timeout);
  }
  std::vector<size_t> Batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::vector<std::string> Names() const {
    absl::MutexLock lock(&mu_);
    return names_;
  }

 private:
  bool HasEnoughLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return names_.size() >= waiting_for_;
  }

  mutable absl::Mutex mu_;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  int calls_in_progress_ ABSL_GUARDED_BY(mu_) = 0;
  size_t waiting_for_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<size_t> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
};

// Records requests and answers with a canned response or error.
class FakeTransport final : public http::HttpTransport {
 public:
  absl::Status Send(const http::HttpRequest& request,
                    const http::HttpStreamCallbacks& callbacks) override {
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
    }
    if (!error_.ok()) return error_;
    http::HttpResponseHead head;
    head.status_code = status_code_;
    if (callbacks.on_head && !callbacks.on_head(head)) return absl::CancelledError("aborted");
    if (callbacks.on_body && !callbacks.on_body(body_)) return absl::CancelledError("aborted");
    return absl::OkStatus();
  }

  std::vector<http::HttpRequest> Requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // Set before use; read by Send.
  int status_code_ = 200;
  std::string body_ = "{}";
  absl::Status error_;

 private:
  absl::Mutex mu_;
  std::vector<http::HttpRequest> requests_;
};

}  // namespace tiermesh::tracing::testing

#endif  // TIERMESH_TESTS_UNIT_COMMON_TRACING_TRACING_FAKES_H_
