#include "tools/bench/load_generator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tiermesh/v1/router.grpc.pb.h"
#include "tools/bench/bench_stats.h"

namespace tiermesh::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

double MillisBetween(TimePoint from, TimePoint to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

void FillChat(const LoadOptions& o, const std::string& prompt, v1::ChatRequest* r) {
  v1::ChatMessage* m = r->add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content(prompt);
  r->mutable_params()->set_max_tokens(o.max_tokens);
}

void FillGenerate(const LoadOptions& o, const std::string& prompt, v1::GenerateRequest* r) {
  r->set_model(o.model);
  v1::ChatMessage* m = r->add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content(prompt);
  r->mutable_params()->set_max_tokens(o.max_tokens);
}

bool HasContentDelta(const v1::ChatStreamResponse& r) { return r.has_delta(); }
bool HasContentDelta(const v1::GenerateStreamResponse& r) { return r.has_delta(); }

class Generator;

// One streaming call; deletes itself when done.
template <typename Request, typename Response>
class StreamCall final : public grpc::ClientReadReactor<Response> {
 public:
  StreamCall(Generator* generator, TimePoint start) : generator_(generator), start_(start) {}
  grpc::ClientContext* context() { return &context_; }
  Request* request() { return &request_; }
  void Go() {
    this->StartRead(&response_);
    this->StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows
    if (HasContentDelta(response_)) {
      if (deltas_++ == 0) first_ = SteadyClock::now();
    }
    this->StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override;

 private:
  Generator* generator_;
  TimePoint start_;
  TimePoint first_;
  int64_t deltas_ = 0;
  grpc::ClientContext context_;
  Request request_;
  Response response_;
};

template <typename Request, typename Response>
struct UnaryCall {
  grpc::ClientContext context;
  Request request;
  Response response;
};

class Generator {
 public:
  Generator(const LoadOptions& options, const std::vector<std::shared_ptr<grpc::Channel>>& channels)
      : options_(options) {
    for (const auto& channel : channels) {
      routers_.push_back(v1::RouterService::NewStub(channel));
      inferences_.push_back(v1::InferenceService::NewStub(channel));
    }
  }

  nlohmann::json Run() {
    begin_ = SteadyClock::now();
    measure_from_ = begin_ + absl::ToChronoNanoseconds(options_.warmup);
    end_ = measure_from_ + absl::ToChronoNanoseconds(options_.duration);
    if (options_.rate <= 0) {
      for (int i = 0; i < options_.concurrency; ++i) {
        if (!Admit()) break;
        Start(SteadyClock::now());
      }
    } else {
      const auto period = std::chrono::duration_cast<SteadyClock::duration>(
          std::chrono::duration<double>(1.0 / options_.rate));
      TimePoint next = begin_;
      while (true) {
        std::this_thread::sleep_until(next);
        {
          std::unique_lock<std::mutex> lock(mu_);
          // At the concurrency bound the call waits; its latency still counts from `next`.
          done_changed_.wait(lock, [&] { return in_flight_ < options_.concurrency; });
        }
        if (!Admit()) break;
        Start(next);
        next += period;
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    done_changed_.wait(lock, [&] { return in_flight_ == 0; });
    const double elapsed_s =
        records_.empty() ? 0.0
                         : std::chrono::duration<double>(last_done_ - measure_from_).count();
    return SummarizeRun(records_, elapsed_s);
  }

  // Called by finished calls (on gRPC's threads), after they deleted themselves: the last one
  // may let Run() return, and the process exit, while this thread is still in gRPC.
  void Done(TimePoint start, const grpc::Status& status, TimePoint first_token, int64_t deltas) {
    const TimePoint now = SteadyClock::now();
    CallRecord record;
    record.code = StatusCodeName(static_cast<int>(status.error_code()));
    record.latency_ms = MillisBetween(start, now);
    if (deltas > 0) record.ttft_ms = MillisBetween(start, first_token);
    record.deltas = deltas;
    bool start_next = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (start >= measure_from_) {
        records_.push_back(std::move(record));
        last_done_ = std::max(last_done_, now);
      }
      --in_flight_;
      if (options_.rate <= 0) start_next = AdmitLocked();
      // Notified under the lock: once in_flight_ reaches 0, Run() may return and the generator
      // be destroyed as soon as the lock is released, so nothing here may touch it after that.
      done_changed_.notify_all();
    }
    if (start_next) Start(SteadyClock::now());
  }

 private:
  // Reserves a call if the run goes on (time and count left); counts it in flight.
  bool Admit() {
    std::lock_guard<std::mutex> lock(mu_);
    return AdmitLocked();
  }
  bool AdmitLocked() {
    if (SteadyClock::now() >= end_) return false;
    if (options_.max_requests > 0 && counted_started_ >= options_.max_requests) return false;
    if (SteadyClock::now() >= measure_from_) ++counted_started_;
    ++in_flight_;
    return true;
  }

  void Start(TimePoint start) {
    const uint64_t n = next_call_++;
    const std::string& prompt = options_.prompts[n % options_.prompts.size()];
    const size_t channel = n % routers_.size();
    const auto deadline = std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(options_.call_timeout);
    auto prepare = [&](grpc::ClientContext* context) {
      context->set_deadline(deadline);
      if (!options_.api_key.empty()) {
        context->AddMetadata("authorization", "Bearer " + options_.api_key);
      }
    };
    const bool router = options_.target == LoadTarget::kRouter;
    if (options_.mode == LoadMode::kUnary) {
      if (router) {
        auto* call = new UnaryCall<v1::ChatRequest, v1::ChatResponse>();
        prepare(&call->context);
        FillChat(options_, prompt, &call->request);
        routers_[channel]->async()->Chat(&call->context, &call->request, &call->response,
                                         [this, call, start](grpc::Status status) {
                                           delete call;  // before Done: see Done()
                                           Done(start, status, start, 0);
                                         });
      } else {
        auto* call = new UnaryCall<v1::GenerateRequest, v1::GenerateResponse>();
        prepare(&call->context);
        FillGenerate(options_, prompt, &call->request);
        inferences_[channel]->async()->Generate(&call->context, &call->request, &call->response,
                                                [this, call, start](grpc::Status status) {
                                                  delete call;  // before Done: see Done()
                                                  Done(start, status, start, 0);
                                                });
      }
      return;
    }
    if (router) {
      auto* call = new StreamCall<v1::ChatStreamRequest, v1::ChatStreamResponse>(this, start);
      prepare(call->context());
      FillChat(options_, prompt, call->request()->mutable_request());
      routers_[channel]->async()->ChatStream(call->context(), call->request(), call);
      call->Go();
    } else {
      auto* call = new StreamCall<v1::GenerateStreamRequest, v1::GenerateStreamResponse>(this, start);
      prepare(call->context());
      FillGenerate(options_, prompt, call->request()->mutable_request());
      inferences_[channel]->async()->GenerateStream(call->context(), call->request(), call);
      call->Go();
    }
  }

  const LoadOptions& options_;
  std::vector<std::unique_ptr<v1::RouterService::Stub>> routers_;
  std::vector<std::unique_ptr<v1::InferenceService::Stub>> inferences_;
  TimePoint begin_;
  TimePoint measure_from_;
  TimePoint end_;
  std::atomic<uint64_t> next_call_{0};

  std::mutex mu_;
  std::condition_variable done_changed_;
  int in_flight_ = 0;
  int64_t counted_started_ = 0;
  TimePoint last_done_;
  std::vector<CallRecord> records_;
};

template <typename Request, typename Response>
void StreamCall<Request, Response>::OnDone(const grpc::Status& status) {
  // The call is gone before the generator hears of it: the last Done() may let main() return.
  Generator* generator = generator_;
  const TimePoint start = start_;
  const TimePoint first = first_;
  const int64_t deltas = deltas_;
  const grpc::Status copy = status;
  delete this;
  generator->Done(start, copy, first, deltas);
}

}  // namespace

absl::StatusOr<nlohmann::json> RunLoad(const LoadOptions& options,
                                       const std::vector<std::shared_ptr<grpc::Channel>>& channels) {
  if (channels.empty()) return absl::InvalidArgumentError("no channel");
  if (options.prompts.empty()) return absl::InvalidArgumentError("no prompt");
  if (options.concurrency < 1) return absl::InvalidArgumentError("concurrency must be >= 1");
  if (options.rate < 0) return absl::InvalidArgumentError("rate must be >= 0");
  if (options.duration <= absl::ZeroDuration() && options.max_requests <= 0) {
    return absl::InvalidArgumentError("give a positive duration or a request count");
  }
  if (options.target == LoadTarget::kInference && options.model.empty()) {
    return absl::InvalidArgumentError("target inference needs a model");
  }
  LoadOptions bounded = options;
  if (bounded.duration <= absl::ZeroDuration()) bounded.duration = absl::Hours(24);
  Generator generator(bounded, channels);
  nlohmann::json report = generator.Run();
  nlohmann::json run;
  run["target"] = options.target == LoadTarget::kRouter ? "router" : "inference";
  run["mode"] = options.mode == LoadMode::kUnary ? "unary" : "stream";
  run["concurrency"] = options.concurrency;
  run["rate"] = options.rate;
  run["channels"] = channels.size();
  run["max_tokens"] = options.max_tokens;
  if (!options.model.empty()) run["model"] = options.model;
  report["run"] = run;
  return report;
}

}  // namespace tiermesh::bench
