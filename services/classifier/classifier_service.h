// The gRPC adapter of ClassifierService: decodes the request, calls the
// Classifier, encodes the verdict, maps the one Status to one gRPC code, and
// records the classifier's metrics (requests by task, complexity histogram,
// latency) and span attributes.
//
//   ASSIGN_OR_RETURN(auto service,
//                    ClassifierServiceImpl::Create(classifier, &registry, server_spans));
//   parts.services = {service.get()};     // server::RunServer (services/common/server)
//
// Metrics (services/common/metrics):
//   tiermesh_classifier_requests_total{task}   task = chat|tool|code|math|reasoning|invalid
//   tiermesh_classifier_complexity             histogram of returned complexity (0..1)
//   tiermesh_classifier_duration_seconds       histogram of in-handler classification time
#ifndef TIERMESH_SERVICES_CLASSIFIER_CLASSIFIER_SERVICE_H_
#define TIERMESH_SERVICES_CLASSIFIER_CLASSIFIER_SERVICE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

#include "services/classifier/classifier.h"
#include "services/common/metrics/families.h"
#include "services/common/server/tracing_interceptor.h"
#include "tiermesh/v1/classifier.grpc.pb.h"

namespace tiermesh::classifier {

class ClassifierServiceImpl final : public tiermesh::v1::ClassifierService::Service {
 public:
  // `registry` receives the metrics; `spans` (may be null) finds each call's
  // server span. Metric registration errors pass through.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ClassifierServiceImpl>> Create(
      std::shared_ptr<const Classifier> classifier, prometheus::Registry* registry,
      std::shared_ptr<server::ServerSpans> spans);

  grpc::Status Classify(grpc::ServerContext* context, const tiermesh::v1::ClassifyRequest* request,
                        tiermesh::v1::ClassifyResponse* response) override;

 private:
  ClassifierServiceImpl(std::shared_ptr<const Classifier> classifier,
                        std::unique_ptr<metrics::CounterVec<1>> requests,
                        prometheus::Histogram* complexity, prometheus::Histogram* duration,
                        std::shared_ptr<server::ServerSpans> spans);

  const std::shared_ptr<const Classifier> classifier_;
  const std::unique_ptr<metrics::CounterVec<1>> requests_;
  prometheus::Histogram* const complexity_;
  prometheus::Histogram* const duration_;
  const std::shared_ptr<server::ServerSpans> spans_;
};

// Buckets of tiermesh_classifier_duration_seconds: 10 us .. 100 ms (an
// in-process classification takes tens of microseconds).
const std::vector<double>& ClassificationDurationBuckets();

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_CLASSIFIER_SERVICE_H_
