// Test-only gRPC services for the metrics and server tests: the real
// ClassifierService and InferenceService APIs (no test protos needed), in
// both the sync and the callback flavour, whose behaviour is picked by the
// request:
//   Classify{text="ok"}      OK
//   Classify{text="fail"}    INVALID_ARGUMENT
//   Classify{text="block"}   waits until the Gate opens (then OK), or until
//                            the call is cancelled (then CANCELLED)
//   GenerateStream{model="ok"}     3 deltas, then OK
//   GenerateStream{model="fail"}   1 delta, then ABORTED (a cut stream)
//   GenerateStream{model="block"}  1 delta, waits for the Gate, then OK
//                                  (sync flavour only)
//
//   Gate gate;
//   SyncClassifier classifier(&gate);
//   ... call Classify("block") on another thread ...
//   gate.AwaitWaiters(1);   // the handler is now blocked
//   gate.Open();
#ifndef TIERMESH_TESTS_UNIT_COMMON_METRICS_GRPC_TEST_SERVICES_H_
#define TIERMESH_TESTS_UNIT_COMMON_METRICS_GRPC_TEST_SERVICES_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

#include "tiermesh/v1/classifier.grpc.pb.h"
#include "tiermesh/v1/inference.grpc.pb.h"

namespace tiermesh::testing {

class Gate {
 public:
  void Open() {
    std::vector<std::function<void()>> callbacks;
    {
      absl::MutexLock lock(&mu_);
      if (open_) return;
      open_ = true;
      callbacks.swap(callbacks_);
    }
    // Outside the lock: a callback may finish a reactor.
    for (auto& callback : callbacks) callback();
  }

  // Sync handlers: true once open, false when the call was cancelled first.
  // Polls for cancellation, which gRPC reports only by query.
  bool WaitSync(grpc::ServerContext* context) {
    absl::MutexLock lock(&mu_);
    ++waiters_;
    while (!open_) {
      if (context->IsCancelled()) return false;
      mu_.AwaitWithTimeout(absl::Condition(&open_), absl::Milliseconds(5));
    }
    return true;
  }

  // Callback handlers: runs `callback` once open (at once if already open).
  void OnOpen(std::function<void()> callback) {
    {
      absl::MutexLock lock(&mu_);
      ++waiters_;
      if (!open_) {
        callbacks_.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }

  // Blocks until `n` handlers have started waiting.
  void AwaitWaiters(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waiters_ >= n; };
    mu_.Await(absl::Condition(&enough));
  }

 private:
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
};

inline grpc::Status FailStatus() {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "fail requested");
}

class SyncClassifier final : public tiermesh::v1::ClassifierService::Service {
 public:
  explicit SyncClassifier(Gate* gate) : gate_(gate) {}

  grpc::Status Classify(grpc::ServerContext* context, const tiermesh::v1::ClassifyRequest* request,
                        tiermesh::v1::ClassifyResponse* response) override {
    if (request->text() == "fail") return FailStatus();
    if (request->text() == "block" && !gate_->WaitSync(context)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while blocked");
    }
    response->mutable_classification()->set_complexity(0.5f);
    return grpc::Status::OK;
  }

 private:
  Gate* const gate_;
};

class SyncInference final : public tiermesh::v1::InferenceService::Service {
 public:
  explicit SyncInference(Gate* gate) : gate_(gate) {}

  grpc::Status GenerateStream(
      grpc::ServerContext* context, const tiermesh::v1::GenerateStreamRequest* request,
      grpc::ServerWriter<tiermesh::v1::GenerateStreamResponse>* writer) override {
    const std::string& model = request->request().model();
    tiermesh::v1::GenerateStreamResponse chunk;
    chunk.mutable_delta()->set_content("tok");
    if (model == "fail") {
      writer->Write(chunk);
      return grpc::Status(grpc::StatusCode::ABORTED, "cut after one delta");
    }
    if (model == "block") {
      writer->Write(chunk);
      if (!gate_->WaitSync(context)) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      return grpc::Status::OK;
    }
    for (int i = 0; i < 3; ++i) writer->Write(chunk);
    return grpc::Status::OK;
  }

 private:
  Gate* const gate_;
};

// Finishes a callback reactor exactly once, from the gate or from OnCancel,
// whichever comes first. Shared with the gate so that it outlives the
// reactor (which deletes itself in OnDone, only after Finish).
struct FinishOnce {
  std::atomic<bool> finished{false};
};

class CallbackClassifier final : public tiermesh::v1::ClassifierService::CallbackService {
 public:
  explicit CallbackClassifier(Gate* gate) : gate_(gate) {}

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const tiermesh::v1::ClassifyRequest* request,
                                     tiermesh::v1::ClassifyResponse* response) override {
    if (request->text() == "block") return new BlockedReactor(gate_);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (request->text() == "fail") {
      reactor->Finish(FailStatus());
    } else {
      response->mutable_classification()->set_complexity(0.5f);
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

 private:
  class BlockedReactor final : public grpc::ServerUnaryReactor {
   public:
    explicit BlockedReactor(Gate* gate) : state_(std::make_shared<FinishOnce>()) {
      std::shared_ptr<FinishOnce> state = state_;
      gate->OnOpen([this, state] {
        if (!state->finished.exchange(true)) Finish(grpc::Status::OK);
      });
    }
    void OnCancel() override {
      if (!state_->finished.exchange(true)) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while blocked"));
      }
    }
    void OnDone() override { delete this; }

   private:
    std::shared_ptr<FinishOnce> state_;
  };

  Gate* const gate_;
};

class CallbackInference final : public tiermesh::v1::InferenceService::CallbackService {
 public:
  grpc::ServerWriteReactor<tiermesh::v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context,
      const tiermesh::v1::GenerateStreamRequest* request) override {
    const bool fail = request->request().model() == "fail";
    return new Writer(fail ? 1 : 3, fail);
  }

 private:
  class Writer final : public grpc::ServerWriteReactor<tiermesh::v1::GenerateStreamResponse> {
   public:
    Writer(int count, bool fail) : remaining_(count), fail_(fail) {
      chunk_.mutable_delta()->set_content("tok");
      Next();
    }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
        return;
      }
      Next();
    }
    void OnDone() override { delete this; }

   private:
    void Next() {
      if (remaining_-- > 0) {
        StartWrite(&chunk_);
        return;
      }
      Finish(fail_ ? grpc::Status(grpc::StatusCode::ABORTED, "cut after one delta")
                   : grpc::Status::OK);
    }
    tiermesh::v1::GenerateStreamResponse chunk_;
    int remaining_;
    const bool fail_;
  };
};

}  // namespace tiermesh::testing

#endif  // TIERMESH_TESTS_UNIT_COMMON_METRICS_GRPC_TEST_SERVICES_H_
