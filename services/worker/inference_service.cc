#include "services/worker/inference_service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/common/server/cancel_watcher.h"
#include "services/common/status/status.h"
#include "services/common/tracing/span_context.h"
#include "services/worker/llama_api.h"
#include "services/worker/proto_convert.h"
#include "services/worker/residency.h"

namespace tiermesh::worker {
namespace {

using tiermesh::v1::GenerateRequest;
using tiermesh::v1::GenerateResponse;
using tiermesh::v1::GenerateStreamResponse;

absl::Time CallDeadline(const grpc::ServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline >= std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 10)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// The parent for the llama-server call's span: the server span of this call when traced, else
// the caller's traceparent.
tracing::SpanContext ParentContext(const grpc::ServerContext* context,
                                   const server::ServerSpans* spans) {
  if (spans != nullptr) {
    if (const tracing::Span* span = spans->Find(context); span != nullptr) return span->context();
  }
  auto it = context->client_metadata().find("traceparent");
  if (it != context->client_metadata().end()) {
    absl::StatusOr<tracing::SpanContext> parsed =
        tracing::ParseTraceparent(absl::string_view(it->second.data(), it->second.size()));
    if (parsed.ok()) return *parsed;
  }
  return tracing::SpanContext();
}

}  // namespace

WorkerInferenceService::WorkerInferenceService(ModelManager* manager, WorkerMetrics* metrics,
                                               WorkerServiceOptions options)
    : manager_(manager),
      metrics_(metrics),
      options_(std::move(options)),
      cancel_poller_(options_.cancel_poll_interval) {}

std::string WorkerInferenceService::ModelName(const GenerateRequest& request) const {
  return request.model().empty() ? manager_->config().default_model : request.model();
}

void WorkerInferenceService::Record(const std::string& model, const absl::Status& status,
                                    const tiermesh::v1::Usage* usage) {
  if (metrics_ == nullptr || manager_->config().Find(model) == nullptr) return;  // bounded labels
  metrics_->RecordRequest(model, status.code(), usage ? usage->prompt_tokens() : 0,
                          usage ? usage->completion_tokens() : 0);
  if (status.code() == absl::StatusCode::kResourceExhausted) metrics_->RecordRejected(model);
}

absl::Status WorkerInferenceService::InjectedFault() {
  const double ratio = manager_->config().fault_unavailable_ratio;
  if (ratio <= 0) return absl::OkStatus();
  if (!InjectFault(requests_.fetch_add(1), ratio)) return absl::OkStatus();
  return absl::UnavailableError("injected fault (fault_injection.unavailable_ratio)");
}

absl::StatusOr<WorkerInferenceService::Call> WorkerInferenceService::Begin(
    grpc::ServerContext* context, const GenerateRequest& request,
    const server::CancelWatcher& watcher, bool stream) {
  const std::string model = ModelName(request);
  TIERMESH_RETURN_IF_ERROR(ValidateGenerateRequest(request));
  TIERMESH_RETURN_IF_ERROR(InjectedFault());
  const absl::Time deadline = CallDeadline(context);
  absl::StatusOr<ModelManager::Lease> lease = manager_->Acquire(model, deadline, watcher.token());
  if (!lease.ok()) return lease.status();
  Call call{*std::move(lease), tracing::Span(), LlamaCallOptions(), request};
  call.span = options_.tracer.StartSpan(
      stream ? "llama-server chat.completions stream" : "llama-server chat.completions",
      tracing::SpanKind::kClient, ParentContext(context, options_.server_spans.get()));
  call.span.SetAttribute("tiermesh.model", model);
  call.options.deadline = deadline;
  if (stream) call.options.idle_timeout = options_.stream_idle_timeout;
  call.options.cancel = watcher.token();
  if (call.span.context().IsValid()) {
    call.options.traceparent = tracing::FormatTraceparent(call.span.context());
  }
  call.request.set_model(model);
  return call;
}

grpc::Status WorkerInferenceService::Generate(grpc::ServerContext* context,
                                              const GenerateRequest* request,
                                              GenerateResponse* response) {
  const absl::Time start = absl::Now();
  const std::string model = ModelName(*request);
  server::CancelWatcher watcher(&cancel_poller_, context);
  absl::StatusOr<Call> call = Begin(context, *request, watcher, /*stream=*/false);
  if (!call.ok()) {
    Record(model, call.status(), nullptr);
    return ReplyStatus(context, call.status());
  }
  tracing::Span& span = call->span;
  const GenerateRequest& forwarded = call->request;
  absl::StatusOr<LlamaCompletion> completion =
      call->lease.client().Complete(forwarded, call->options);
  span.RecordStatus(completion.status());
  if (!completion.ok()) {
    Record(model, completion.status(), nullptr);
    return ReplyStatus(context, completion.status());
  }
  *response = ToGenerateResponse(*completion, model, absl::Now() - start);
  Record(model, absl::OkStatus(), &response->usage());
  return grpc::Status::OK;
}

grpc::Status WorkerInferenceService::GenerateStream(
    grpc::ServerContext* context, const tiermesh::v1::GenerateStreamRequest* stream_request,
    grpc::ServerWriter<GenerateStreamResponse>* writer) {
  const absl::Time start = absl::Now();
  const GenerateRequest& request = stream_request->request();
  const std::string model = ModelName(request);
  server::CancelWatcher watcher(&cancel_poller_, context);
  absl::StatusOr<Call> call = Begin(context, request, watcher, /*stream=*/true);
  if (!call.ok()) {
    Record(model, call.status(), nullptr);
    return ReplyStatus(context, call.status());
  }
  tracing::Span& span = call->span;

  bool wrote_delta = false;
  absl::Time first_token_at = absl::InfiniteFuture();
  StreamOutcome outcome;
  absl::Status status = call->lease.client().Stream(
      call->request, call->options,
      [&](const StreamDelta& delta) {
        GenerateStreamResponse message;
        *message.mutable_delta() = ToDelta(delta);
        if (!writer->Write(message)) return false;  // the client is gone
        if (!wrote_delta) first_token_at = absl::Now();
        wrote_delta = true;
        return true;
      },
      &outcome);
  if (!status.ok() && context->IsCancelled() && status.code() != absl::StatusCode::kDeadlineExceeded) {
    status = absl::CancelledError("the caller cancelled the stream");
  }
  span.RecordStatus(status);
  const absl::Time end = absl::Now();
  tiermesh::v1::Usage usage = ToUsage(outcome.usage, outcome.timings, outcome.content_chunks);
  if (status.ok() || wrote_delta) {
    GenerateStreamResponse message;
    tiermesh::v1::StreamSummary* summary = message.mutable_summary();
    summary->set_complete(status.ok());
    summary->set_finish_reason(status.ok() ? outcome.finish_reason
                                           : tiermesh::v1::FINISH_REASON_ERROR);
    if (status.code() == absl::StatusCode::kCancelled ||
        status.code() == absl::StatusCode::kDeadlineExceeded) {
      summary->set_finish_reason(tiermesh::v1::FINISH_REASON_CANCELLED);
    }
    *summary->mutable_usage() = usage;
    summary->mutable_cost()->set_nano_usd(0);
    summary->set_model(model);
    tiermesh::v1::Timings* timings = summary->mutable_timings();
    if (wrote_delta) {
      SetDuration(first_token_at - start, timings->mutable_time_to_first_token());
      if (metrics_ != nullptr) metrics_->RecordTimeToFirstToken(model, first_token_at - start);
    }
    if (outcome.timings.has_value()) {
      timings->set_tokens_per_second(outcome.timings->predicted_per_second);
    }
    SetDuration(end - start, timings->mutable_total());
    if (!status.ok()) summary->set_error(std::string(status.message()));
    writer->Write(message);
  }
  Record(model, status, &usage);
  return ReplyStatus(context, status);
}

grpc::Status WorkerInferenceService::ListModels(grpc::ServerContext* /*context*/,
                                                const tiermesh::v1::ListModelsRequest* /*request*/,
                                                tiermesh::v1::ListModelsResponse* response) {
  for (const ModelSnapshot& s : manager_->Snapshots()) *response->add_models() = ToModelInfo(s);
  return grpc::Status::OK;
}

grpc::Status WorkerInferenceService::GetLoad(grpc::ServerContext* context,
                                             const tiermesh::v1::GetLoadRequest* request,
                                             tiermesh::v1::GetLoadResponse* response) {
  response->set_ready(manager_->DefaultReady());
  if (!request->model().empty()) {
    absl::StatusOr<ModelSnapshot> s = manager_->Snapshot(request->model());
    if (!s.ok()) return ReplyStatus(context, s.status());
    *response->add_models() = ToModelLoad(*s);
    return grpc::Status::OK;
  }
  for (const ModelSnapshot& s : manager_->Snapshots()) *response->add_models() = ToModelLoad(s);
  return grpc::Status::OK;
}

WorkerModelService::WorkerModelService(ModelManager* manager) : manager_(manager) {}

grpc::Status WorkerModelService::ListModels(
    grpc::ServerContext* /*context*/, const tiermesh::v1::ModelServiceListModelsRequest* /*request*/,
    tiermesh::v1::ModelServiceListModelsResponse* response) {
  for (const ModelSnapshot& s : manager_->Snapshots()) *response->add_models() = ToResidentModel(s);
  return grpc::Status::OK;
}

grpc::Status WorkerModelService::LoadModel(grpc::ServerContext* context,
                                           const tiermesh::v1::LoadModelRequest* request,
                                           tiermesh::v1::LoadModelResponse* response) {
  if (request->model().empty()) {
    return ReplyStatus(context, absl::InvalidArgumentError("model: required"));
  }
  absl::Status status = manager_->Load(request->model(), request->wait(), CallDeadline(context));
  if (!status.ok()) return ReplyStatus(context, status);
  absl::StatusOr<ModelSnapshot> s = manager_->Snapshot(request->model());
  if (!s.ok()) return ReplyStatus(context, s.status());
  *response->mutable_model() = ToResidentModel(*s);
  return grpc::Status::OK;
}

grpc::Status WorkerModelService::UnloadModel(grpc::ServerContext* context,
                                             const tiermesh::v1::UnloadModelRequest* request,
                                             tiermesh::v1::UnloadModelResponse* response) {
  if (request->model().empty()) {
    return ReplyStatus(context, absl::InvalidArgumentError("model: required"));
  }
  absl::Duration drain = manager_->config().drain_timeout;
  if (request->has_drain_timeout()) {
    drain = absl::Seconds(request->drain_timeout().seconds()) +
            absl::Nanoseconds(request->drain_timeout().nanos());
    if (drain < absl::ZeroDuration() || drain > absl::Hours(1)) {
      return ReplyStatus(context, absl::InvalidArgumentError("drain_timeout: must be within [0, 1h]"));
    }
  }
  // The call's own deadline bounds the drain as well.
  const absl::Time deadline = CallDeadline(context);
  if (deadline != absl::InfiniteFuture()) drain = std::min(drain, deadline - absl::Now());
  absl::Status status = manager_->Unload(request->model(), drain);
  if (!status.ok()) return ReplyStatus(context, status);
  absl::StatusOr<ModelSnapshot> s = manager_->Snapshot(request->model());
  if (!s.ok()) return ReplyStatus(context, s.status());
  *response->mutable_model() = ToResidentModel(*s);
  return grpc::Status::OK;
}

}  // namespace tiermesh::worker
