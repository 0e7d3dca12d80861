// The router's client of ClassifierService, behind an interface so that
// RouterService tests use a fake. The call's deadline is the earlier of the
// caller's and now + the policy's classifier timeout: a slow classifier must
// not eat the budget of the backend call.
//
//   GrpcClassifierClient classifier(grpc::CreateChannel(endpoint, creds));
//   absl::StatusOr<v1::Classification> c = classifier.Classify(request, call);
//   if (!c.ok()) ...;   // route unclassified (RequestFacts.classified = false)
#ifndef TIERMESH_SERVICES_ROUTER_CLASSIFIER_CLIENT_H_
#define TIERMESH_SERVICES_ROUTER_CLASSIFIER_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"

#include "services/router/backend_client.h"
#include "tiermesh/v1/classifier.grpc.pb.h"

namespace tiermesh::router {

class ClassifierClient {
 public:
  virtual ~ClassifierClient() = default;
  [[nodiscard]] virtual absl::StatusOr<v1::Classification> Classify(
      const v1::ClassifyRequest& request, const CallOptions& call) = 0;
};

class GrpcClassifierClient final : public ClassifierClient {
 public:
  explicit GrpcClassifierClient(std::shared_ptr<grpc::Channel> channel);
  absl::StatusOr<v1::Classification> Classify(const v1::ClassifyRequest& request,
                                              const CallOptions& call) override;

 private:
  std::unique_ptr<v1::ClassifierService::Stub> stub_;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_CLASSIFIER_CLIENT_H_
