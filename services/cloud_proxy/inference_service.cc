#include "services/cloud_proxy/inference_service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/duration.pb.h"

#include "services/cloud_proxy/errors.h"
#include "services/cloud_proxy/pricing.h"
#include "services/cloud_proxy/providers/adapter_util.h"
#include "services/cloud_proxy/usage.h"
#include "services/common/server/cancel_watcher.h"
#include "services/common/status/status.h"
#include "services/common/tracing/propagation.h"

namespace tiermesh::cloud {

using tiermesh::v1::GenerateRequest;
using tiermesh::v1::GenerateResponse;
using tiermesh::v1::GenerateStreamResponse;
using tiermesh::v1::Usage;

struct CloudInferenceService::Provider {
  ProviderConfig config;  // headers resolved
  std::unique_ptr<ProviderAdapter> adapter;
  absl::optional<std::string> key;  // the operator's key
  std::string unavailable_reason;   // why there is no usable key
  std::unique_ptr<RateLimiter> limiter;
  std::atomic<int32_t> in_flight{0};
};

struct CloudInferenceService::Model {
  ModelConfig config;
  Provider* provider = nullptr;
  std::atomic<int32_t> in_flight{0};
};

struct CloudInferenceService::Metrics {
  std::unique_ptr<tiermesh::metrics::CounterVec<3>> requests;
  std::unique_ptr<tiermesh::metrics::CounterVec<2>> cost;
  std::unique_ptr<tiermesh::metrics::CounterVec<2>> byok_cost;
  std::unique_ptr<tiermesh::metrics::CounterVec<1>> rate_limited;
  std::unique_ptr<tiermesh::metrics::HistogramVec<1>> upstream_duration;
  std::unique_ptr<tiermesh::metrics::CounterVec<3>> tokens;
};

struct CloudInferenceService::Prepared {
  Model* model = nullptr;
  Provider* provider = nullptr;
  std::string key;
  bool byok = false;
  int64_t reserved_tokens = 0;  // debited from the provider's tokens/min
};

namespace {

// The server span's context (the tracing interceptor put it in the
// metadata), else the caller's; invalid when neither exists.
tiermesh::tracing::SpanContext ParentSpan(const grpc::ServerContext& context) {
  return tiermesh::tracing::ExtractGrpc(context).value_or(tiermesh::tracing::SpanContext());
}

absl::Time Deadline(const grpc::ServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1'000'000'000);
  out->set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
}

// The gRPC status with the reason and retry delay as trailing metadata.
grpc::Status ToGrpc(grpc::ServerContext* context, const absl::Status& status,
                    const std::string& key) {
  const absl::Status redacted = RedactStatus(status, {key});
  if (redacted.ok()) return grpc::Status::OK;
  if (absl::optional<absl::Duration> wait = GetRetryAfter(redacted)) {
    context->AddTrailingMetadata(std::string(kRetryAfterMetadata),
                                 absl::StrCat(absl::ToInt64Milliseconds(*wait)));
  }
  return ReplyStatus(context, redacted);
}

// Cost of a generation; a usage the pricing rejects (provider inconsistency)
// is priced at 0 and flagged estimated rather than failing a served answer.
tiermesh::v1::Cost PriceOf(const Usage& usage, const Price& price, bool byok) {
  absl::StatusOr<tiermesh::v1::Cost> cost = ComputeCost(usage, price, byok);
  if (cost.ok()) return *cost;
  tiermesh::v1::Cost fallback;
  fallback.set_byok(byok);
  fallback.set_estimated(true);
  return fallback;
}

}  // namespace

CloudInferenceService::CloudInferenceService(CloudServiceOptions options)
    : options_(std::move(options)),
      cancel_poller_(
          std::make_unique<tiermesh::server::CancelPoller>(options_.cancel_poll_interval)) {}

CloudInferenceService::~CloudInferenceService() = default;

absl::StatusOr<std::unique_ptr<CloudInferenceService>> CloudInferenceService::Create(
    const CloudConfig& config, const EnvLookup& env, const FileReader& read_file,
    CloudServiceOptions options) {
  if (options.transport == nullptr) {
    return absl::InvalidArgumentError("cloud-proxy service needs an HTTP transport");
  }
  if (!options.clock) options.clock = [] { return absl::Now(); };
  std::unique_ptr<CloudInferenceService> service(new CloudInferenceService(std::move(options)));
  service->upstream_ = std::make_unique<UpstreamClient>(
      service->options_.transport, service->options_.clock, service->options_.tracer);
  for (const ProviderConfig& pc : config.providers) {
    auto provider = std::make_unique<Provider>();
    provider->config = pc;
    absl::StatusOr<Headers> headers = ResolveHeaders(pc.headers, env);
    if (headers.ok()) {
      provider->config.headers = *std::move(headers);
      absl::StatusOr<std::string> key = ResolveKey(pc.key, env, read_file);
      if (key.ok()) {
        provider->key = *std::move(key);
      } else {
        provider->unavailable_reason = std::string(key.status().message());
      }
    } else {
      provider->config.headers.clear();
      provider->unavailable_reason = std::string(headers.status().message());
    }
    provider->adapter = MakeProviderAdapter(provider->config);
    provider->limiter = std::make_unique<RateLimiter>(pc.limits, service->options_.clock);
    for (const ModelConfig& mc : pc.models) {
      auto model = std::make_unique<Model>();
      model->config = mc;
      model->provider = provider.get();
      service->models_.emplace(mc.name, std::move(model));
    }
    service->providers_.push_back(std::move(provider));
  }

  if (prometheus::Registry* registry = service->options_.metrics_registry) {
    namespace m = tiermesh::metrics;
    auto metrics = std::make_unique<Metrics>();
    auto requests = m::NewCounterVec(*registry, "tiermesh_cloud_requests_total",
                                     "Cloud-proxy calls by provider, model and result code.",
                                     {"provider", "model", "code"});
    if (!requests.ok()) return requests.status();
    metrics->requests = *std::move(requests);
    auto cost =
        m::NewCounterVec(*registry, "tiermesh_cloud_cost_usd_total",
                         "Operator spend in USD (BYOK calls excluded).", {"provider", "model"});
    if (!cost.ok()) return cost.status();
    metrics->cost = *std::move(cost);
    auto byok = m::NewCounterVec(*registry, "tiermesh_cloud_byok_cost_usd_total",
                                 "What BYOK calls cost their callers, in USD (informational).",
                                 {"provider", "model"});
    if (!byok.ok()) return byok.status();
    metrics->byok_cost = *std::move(byok);
    auto limited =
        m::NewCounterVec(*registry, "tiermesh_cloud_rate_limited_total",
                         "Calls refused by a client-side limit or an upstream 429.", {"provider"});
    if (!limited.ok()) return limited.status();
    metrics->rate_limited = *std::move(limited);
    auto duration = m::NewHistogramVec(*registry, "tiermesh_cloud_upstream_duration_seconds",
                                       "Time spent in the upstream call.", {"provider"},
                                       m::LatencyBucketsSeconds());
    if (!duration.ok()) return duration.status();
    metrics->upstream_duration = *std::move(duration);
    auto tokens = m::NewCounterVec(*registry, "tiermesh_cloud_tokens_total",
                                   "Tokens by provider, model and kind (prompt, completion).",
                                   {"provider", "model", "kind"});
    if (!tokens.ok()) return tokens.status();
    metrics->tokens = *std::move(tokens);
    service->metrics_ = std::move(metrics);
  }
  return service;
}

bool CloudInferenceService::ready() const {
  for (const auto& p : providers_) {
    if (p->key.has_value()) return true;
  }
  return false;
}

tiermesh::v1::ModelState CloudInferenceService::StateOf(const Model& model) const {
  return model.provider->key.has_value() ? tiermesh::v1::MODEL_STATE_READY
                                         : tiermesh::v1::MODEL_STATE_UNAVAILABLE;
}

absl::StatusOr<CloudInferenceService::Prepared> CloudInferenceService::Prepare(
    grpc::ServerContext* context, const GenerateRequest& request, bool stream) {
  if (providers_.empty()) {
    return WithReason(
        absl::UnavailableError("cloud-proxy is offline: no cloud provider is configured"),
        "provider_unavailable");
  }
  auto it = models_.find(request.model());
  if (it == models_.end()) {
    std::vector<std::string> names;
    for (const auto& [name, model] : models_) names.push_back(name);
    return absl::NotFoundError(
        absl::StrCat("unknown model \"", request.model(),
                     "\" (this cloud-proxy serves: ", absl::StrJoin(names, ", "), ")"));
  }
  Prepared p;
  p.model = it->second.get();
  p.provider = p.model->provider;
  const auto& metadata = context->client_metadata();
  if (auto byok = metadata.find(kProviderKeyMetadata); byok != metadata.end()) {
    p.key.assign(byok->second.data(), byok->second.size());
    p.byok = true;
    if (p.key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kProviderKeyMetadata, " metadata is present but empty"));
    }
  } else if (p.provider->key.has_value()) {
    p.key = *p.provider->key;
  } else {
    return WithReason(absl::UnavailableError(absl::StrCat(
                          "provider ", p.provider->config.name, " (model ", request.model(),
                          ") is unavailable: ", p.provider->unavailable_reason)),
                      "provider_unavailable");
  }
  if (absl::Status valid = ValidateGenerateRequest(request); !valid.ok()) return valid;
  if (stream && !p.model->config.supports_streaming) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", request.model(), " does not support streaming"));
  }
  if (!p.byok) {
    p.reserved_tokens = EstimatePromptTokens(request) +
                        internal::EffectiveMaxTokens(request, p.model->config,
                                                     options_.default_reserve_output_tokens);
    if (absl::Status admitted = p.provider->limiter->TryAcquire(p.reserved_tokens);
        !admitted.ok()) {
      if (metrics_) metrics_->rate_limited->Get({p.provider->config.name}).Increment();
      return admitted;
    }
  }
  const int32_t max = p.provider->config.max_concurrency;
  int32_t current = p.provider->in_flight.load();
  do {
    if (max > 0 && current >= max) {
      if (!p.byok) p.provider->limiter->Adjust(-p.reserved_tokens);
      if (metrics_) metrics_->rate_limited->Get({p.provider->config.name}).Increment();
      return WithReason(absl::ResourceExhaustedError(
                            absl::StrCat("provider ", p.provider->config.name,
                                         " is at its concurrency limit (", max, " calls)")),
                        "saturated");
    }
  } while (!p.provider->in_flight.compare_exchange_weak(current, current + 1));
  p.model->in_flight.fetch_add(1);
  return p;
}

void CloudInferenceService::Release(const Prepared& prepared, const Usage* usage) {
  prepared.provider->in_flight.fetch_sub(1);
  prepared.model->in_flight.fetch_sub(1);
  if (!prepared.byok) {
    const int64_t used = usage != nullptr ? usage->total_tokens() : 0;
    prepared.provider->limiter->Adjust(used - prepared.reserved_tokens);
  }
}

void CloudInferenceService::Record(const Prepared* prepared, absl::StatusCode code,
                                   const Usage* usage, const tiermesh::v1::Cost* cost,
                                   absl::Duration upstream, const GenerateRequest& request,
                                   const absl::Status& status) {
  // Label values come from the config only (never the caller's model string).
  const std::string provider = prepared ? prepared->provider->config.name : "none";
  const std::string model = prepared ? prepared->model->config.name : "unknown";
  if (metrics_) {
    metrics_->requests->Get({provider, model, CodeName(code)}).Increment();
    if (prepared != nullptr) {
      metrics_->upstream_duration->Get({provider}).Observe(absl::ToDoubleSeconds(upstream));
      if (code == absl::StatusCode::kResourceExhausted) {
        metrics_->rate_limited->Get({provider}).Increment();
      }
    }
    if (usage != nullptr) {
      metrics_->tokens->Get({provider, model, "prompt"})
          .Increment(static_cast<double>(usage->prompt_tokens()));
      metrics_->tokens->Get({provider, model, "completion"})
          .Increment(static_cast<double>(usage->completion_tokens()));
    }
    if (cost != nullptr) {
      auto& counter = cost->byok() ? metrics_->byok_cost : metrics_->cost;
      counter->Get({provider, model}).Increment(cost->usd());
    }
  }
  if (options_.logger) {
    options_.logger->Info("cloud call",
                          {{"provider", provider},
                           {"model", model},
                           {"request_id", request.request_id()},
                           {"code", std::string(CodeName(code))},
                           {"reason", ErrorReason(status)},
                           {"error", status.ok() ? std::string() : std::string(status.message())},
                           {"byok", prepared != nullptr && prepared->byok},
                           {"prompt_tokens", usage ? usage->prompt_tokens() : 0},
                           {"completion_tokens", usage ? usage->completion_tokens() : 0},
                           {"usage_estimated", usage != nullptr && usage->estimated()},
                           {"cost_usd", cost ? cost->usd() : 0.0},
                           {"upstream_ms", absl::ToDoubleMilliseconds(upstream)}});
  }
}

UpstreamCall CloudInferenceService::CallFor(
    const Prepared& prepared, const grpc::ServerContext& context,
    const std::shared_ptr<tiermesh::http::CancellationToken>& cancel) const {
  return UpstreamCall{prepared.provider->adapter.get(),
                      &prepared.model->config,
                      prepared.key,
                      Deadline(&context),
                      cancel,
                      ParentSpan(context)};
}

grpc::Status CloudInferenceService::Generate(grpc::ServerContext* context,
                                             const GenerateRequest* request,
                                             GenerateResponse* response) {
  const absl::Time start = options_.clock();
  absl::StatusOr<Prepared> prepared = Prepare(context, *request, /*stream=*/false);
  if (!prepared.ok()) {
    Record(nullptr, prepared.status().code(), nullptr, nullptr, absl::ZeroDuration(), *request,
           prepared.status());
    return ToGrpc(context, prepared.status(), "");
  }
  absl::StatusOr<GenerateResponse> result;
  {
    tiermesh::server::CancelWatcher watcher(cancel_poller_.get(), context);
    const UpstreamCall call = CallFor(*prepared, *context, watcher.token());
    result = upstream_->Generate(call, *request);
  }
  const absl::Duration took = options_.clock() - start;
  if (!result.ok()) {
    Release(*prepared, nullptr);
    const absl::Status status = RedactStatus(result.status(), {prepared->key});
    Record(&*prepared, status.code(), nullptr, nullptr, took, *request, status);
    return ToGrpc(context, status, prepared->key);
  }
  Release(*prepared, &result->usage());
  *result->mutable_cost() = PriceOf(result->usage(), prepared->model->config.price, prepared->byok);
  if (result->model().empty()) result->set_model(prepared->model->config.upstream);
  tiermesh::v1::Timings* timings = result->mutable_timings();
  SetDuration(took, timings->mutable_time_to_first_token());
  SetDuration(took, timings->mutable_total());
  if (took > absl::ZeroDuration()) {
    timings->set_tokens_per_second(static_cast<double>(result->usage().completion_tokens()) /
                                   absl::ToDoubleSeconds(took));
  }
  Record(&*prepared, absl::StatusCode::kOk, &result->usage(), &result->cost(), took, *request,
         absl::OkStatus());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status CloudInferenceService::GenerateStream(
    grpc::ServerContext* context, const tiermesh::v1::GenerateStreamRequest* stream_request,
    grpc::ServerWriter<GenerateStreamResponse>* writer) {
  const GenerateRequest& request = stream_request->request();
  const absl::Time start = options_.clock();
  absl::StatusOr<Prepared> prepared = Prepare(context, request, /*stream=*/true);
  if (!prepared.ok()) {
    Record(nullptr, prepared.status().code(), nullptr, nullptr, absl::ZeroDuration(), request,
           prepared.status());
    return ToGrpc(context, prepared.status(), "");
  }
  bool wrote_delta = false;
  UpstreamStreamResult result;
  {
    tiermesh::server::CancelWatcher watcher(cancel_poller_.get(), context);
    const UpstreamCall call = CallFor(*prepared, *context, watcher.token());
    result = upstream_->GenerateStream(call, request, [&](const StreamUpdate& update) {
      if (context->IsCancelled()) return false;
      if (!update.has_delta()) return true;
      GenerateStreamResponse message;
      *message.mutable_delta() = update.delta;
      if (!writer->Write(message)) return false;  // the client is gone
      wrote_delta = true;
      return true;
    });
  }
  const absl::Time end = options_.clock();
  Release(*prepared, &result.usage);
  const absl::Status status = RedactStatus(result.status, {prepared->key});
  const tiermesh::v1::Cost cost =
      PriceOf(result.usage, prepared->model->config.price, prepared->byok);
  if (status.ok() || wrote_delta) {
    GenerateStreamResponse message;
    tiermesh::v1::StreamSummary* summary = message.mutable_summary();
    summary->set_complete(status.ok());
    summary->set_finish_reason(status.ok() ? result.finish_reason
                                           : tiermesh::v1::FINISH_REASON_ERROR);
    if (status.code() == absl::StatusCode::kCancelled ||
        status.code() == absl::StatusCode::kDeadlineExceeded) {
      summary->set_finish_reason(tiermesh::v1::FINISH_REASON_CANCELLED);
    }
    *summary->mutable_usage() = result.usage;
    *summary->mutable_cost() = cost;
    summary->set_model(result.model.empty() ? prepared->model->config.upstream : result.model);
    tiermesh::v1::Timings* timings = summary->mutable_timings();
    if (result.first_token_at) {
      SetDuration(*result.first_token_at - start, timings->mutable_time_to_first_token());
      const absl::Duration generating = end - *result.first_token_at;
      if (generating > absl::ZeroDuration()) {
        timings->set_tokens_per_second(static_cast<double>(result.usage.completion_tokens()) /
                                       absl::ToDoubleSeconds(generating));
      }
    }
    SetDuration(end - start, timings->mutable_total());
    if (!status.ok()) summary->set_error(std::string(status.message()));
    writer->Write(message);
  }
  const bool billed = result.usage.prompt_tokens() > 0 || result.usage.completion_tokens() > 0;
  Record(&*prepared, status.code(), &result.usage, billed ? &cost : nullptr, end - start, request,
         status);
  return ToGrpc(context, status, prepared->key);
}

grpc::Status CloudInferenceService::ListModels(grpc::ServerContext* context,
                                               const tiermesh::v1::ListModelsRequest* request,
                                               tiermesh::v1::ListModelsResponse* response) {
  for (const auto& [name, model] : models_) {
    tiermesh::v1::ModelInfo* info = response->add_models();
    info->set_name(name);
    info->set_provider(model->provider->config.name);
    info->set_state(StateOf(*model));
    info->set_context_window(model->config.context_window);
    info->set_supports_tools(model->config.supports_tools);
    info->set_supports_streaming(model->config.supports_streaming);
    *info->mutable_price() = ToProtoPrice(model->config.price);
    if (info->state() != tiermesh::v1::MODEL_STATE_READY) {
      info->set_unavailable_reason(
          absl::StrCat("provider ", model->provider->config.name,
                       " has no key: ", model->provider->unavailable_reason));
    }
  }
  return grpc::Status::OK;
}

grpc::Status CloudInferenceService::GetLoad(grpc::ServerContext* context,
                                            const tiermesh::v1::GetLoadRequest* request,
                                            tiermesh::v1::GetLoadResponse* response) {
  if (!request->model().empty() && models_.count(request->model()) == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("unknown model \"", request->model(), "\""));
  }
  response->set_ready(ready());
  for (const auto& [name, model] : models_) {
    if (!request->model().empty() && request->model() != name) continue;
    const Provider& provider = *model->provider;
    tiermesh::v1::ModelLoad* load = response->add_models();
    load->set_model(name);
    load->set_state(StateOf(*model));
    load->set_slots_busy(model->in_flight.load());
    load->set_slots_total(provider.config.max_concurrency);
    const bool has_room = provider.config.max_concurrency == 0 ||
                          provider.in_flight.load() < provider.config.max_concurrency;
    load->set_accepting(load->state() == tiermesh::v1::MODEL_STATE_READY && has_room &&
                        provider.limiter->WouldAdmit(0));
  }
  return grpc::Status::OK;
}

}  // namespace tiermesh::cloud
