#include "services/router/classifier_client.h"

#include <utility>

#include "services/common/status/status.h"

namespace tiermesh::router {

GrpcClassifierClient::GrpcClassifierClient(std::shared_ptr<grpc::Channel> channel)
    : stub_(v1::ClassifierService::NewStub(std::move(channel))) {}

absl::StatusOr<v1::Classification> GrpcClassifierClient::Classify(
    const v1::ClassifyRequest& request, const CallOptions& call) {
  grpc::ClientContext context;
  // The classifier never sees the caller's provider key.
  CallOptions classifier_call = call;
  classifier_call.provider_key.clear();
  TIERMESH_RETURN_IF_ERROR(PrepareClientContext(classifier_call, &context));
  v1::ClassifyResponse response;
  grpc::Status status = stub_->Classify(&context, request, &response);
  if (!status.ok()) return StatusFromCall(status, context);
  return response.classification();
}

}  // namespace tiermesh::router
