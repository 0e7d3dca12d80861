#include "services/router/backend_client.h"

#include <utility>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

#include "services/common/status/status.h"

namespace tiermesh::router {

absl::Status PrepareClientContext(const CallOptions& call, grpc::ClientContext* context) {
  if (call.deadline == absl::InfiniteFuture() || call.deadline == absl::InfinitePast()) {
    return absl::InvalidArgumentError("outgoing call without a finite deadline");
  }
  context->set_deadline(absl::ToChronoTime(call.deadline));
  if (!call.request_id.empty()) context->AddMetadata(kRequestIdMetadata, call.request_id);
  if (!call.traceparent.empty()) {
    context->AddMetadata("traceparent", call.traceparent);
    if (!call.tracestate.empty()) context->AddMetadata("tracestate", call.tracestate);
  }
  if (!call.provider_key.empty()) context->AddMetadata(kProviderKeyMetadata, call.provider_key);
  return absl::OkStatus();
}

absl::Status StatusFromCall(const grpc::Status& status, const grpc::ClientContext& context) {
  absl::Status out = FromGrpcStatus(status);
  if (out.ok()) return out;
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(std::string(kErrorReasonMetadata));
  if (it != trailers.end() && !it->second.empty()) {
    out = WithReason(std::move(out), absl::string_view(it->second.data(), it->second.size()));
  }
  return out;
}

GrpcBackendClient::GrpcBackendClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::InferenceService::NewStub(std::move(channel))) {}

absl::StatusOr<v1::GenerateResponse> GrpcBackendClient::Generate(const v1::GenerateRequest& request,
                                                                 const CallOptions& call) {
  grpc::ClientContext context;
  TIERMESH_RETURN_IF_ERROR(PrepareClientContext(call, &context));
  v1::GenerateResponse response;
  grpc::Status status = stub_->Generate(&context, request, &response);
  if (!status.ok()) return StatusFromCall(status, context);
  return response;
}

absl::Status GrpcBackendClient::GenerateStream(const v1::GenerateStreamRequest& request,
                                               const CallOptions& call,
                                               const StreamHandler& on_event) {
  grpc::ClientContext context;
  TIERMESH_RETURN_IF_ERROR(PrepareClientContext(call, &context));
  std::unique_ptr<grpc::ClientReader<v1::GenerateStreamResponse>> reader =
      stub_->GenerateStream(&context, request);
  v1::GenerateStreamResponse event;
  bool stopped = false;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (stopped) return absl::CancelledError("stream stopped by the router");
  return StatusFromCall(status, context);
}

absl::StatusOr<v1::GetLoadResponse> GrpcBackendClient::GetLoad(const v1::GetLoadRequest& request,
                                                               const CallOptions& call) {
  grpc::ClientContext context;
  TIERMESH_RETURN_IF_ERROR(PrepareClientContext(call, &context));
  v1::GetLoadResponse response;
  grpc::Status status = stub_->GetLoad(&context, request, &response);
  if (!status.ok()) return StatusFromCall(status, context);
  return response;
}

std::shared_ptr<grpc::Channel> NewMeshChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

std::shared_ptr<BackendClient> GrpcBackendClientFactory::ForEndpoint(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = clients_.find(endpoint);
  if (it != clients_.end()) return it->second;
  auto client = std::make_shared<GrpcBackendClient>(NewMeshChannel(endpoint));
  clients_.emplace(endpoint, client);
  return client;
}

}  // namespace tiermesh::router
