#include "services/classifier/classifier_service.h"

#include <chrono>
#include <utility>

#include "services/classifier/proto_convert.h"
#include "services/common/status/status.h"

namespace tiermesh::classifier {

const std::vector<double>& ClassificationDurationBuckets() {
  static const auto* const kBuckets = new std::vector<double>{
      1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 1e-1};
  return *kBuckets;
}

absl::StatusOr<std::unique_ptr<ClassifierServiceImpl>> ClassifierServiceImpl::Create(
    std::shared_ptr<const Classifier> classifier, prometheus::Registry* registry,
    std::shared_ptr<server::ServerSpans> spans) {
  if (classifier == nullptr || registry == nullptr) {
    return absl::InvalidArgumentError("classifier service needs a classifier and a registry");
  }
  absl::StatusOr<std::unique_ptr<metrics::CounterVec<1>>> requests = metrics::NewCounterVec(
      *registry, metrics::MetricName("classifier", "requests_total"),
      "Classify requests by the task type returned (invalid: refused requests).", {"task"});
  if (!requests.ok()) return requests.status();
  absl::StatusOr<prometheus::Histogram*> complexity = metrics::NewHistogram(
      *registry, metrics::MetricName("classifier", "complexity"),
      "Complexity returned by Classify (0: any small model, 1: needs the strongest).",
      metrics::RatioBuckets());
  if (!complexity.ok()) return complexity.status();
  absl::StatusOr<prometheus::Histogram*> duration = metrics::NewHistogram(
      *registry, metrics::MetricName("classifier", "duration_seconds"),
      "Time spent classifying one request inside the handler.", ClassificationDurationBuckets());
  if (!duration.ok()) return duration.status();
  return std::unique_ptr<ClassifierServiceImpl>(new ClassifierServiceImpl(
      std::move(classifier), *std::move(requests), *complexity, *duration, std::move(spans)));
}

ClassifierServiceImpl::ClassifierServiceImpl(std::shared_ptr<const Classifier> classifier,
                                             std::unique_ptr<metrics::CounterVec<1>> requests,
                                             prometheus::Histogram* complexity,
                                             prometheus::Histogram* duration,
                                             std::shared_ptr<server::ServerSpans> spans)
    : classifier_(std::move(classifier)),
      requests_(std::move(requests)),
      complexity_(complexity),
      duration_(duration),
      spans_(std::move(spans)) {}

grpc::Status ClassifierServiceImpl::Classify(grpc::ServerContext* context,
                                             const tiermesh::v1::ClassifyRequest* request,
                                             tiermesh::v1::ClassifyResponse* response) {
  const auto start = std::chrono::steady_clock::now();
  tracing::Span* span = spans_ != nullptr ? spans_->Find(context) : nullptr;
  absl::StatusOr<Classification> verdict = [&]() -> absl::StatusOr<Classification> {
    absl::StatusOr<ClassifyInput> input = InputFromProto(*request);
    if (!input.ok()) return input.status();
    return classifier_->Classify(*input);
  }();
  if (!verdict.ok()) {
    requests_->Get({"invalid"}).Increment();
    if (span != nullptr)
      span->SetAttribute("tiermesh.classifier.error", verdict.status().ToString());
    return ToGrpcStatus(verdict.status());
  }
  *response->mutable_classification() = ToProto(*verdict);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string_view task = TaskName(verdict->task);
  requests_->Get({absl::string_view(task.data(), task.size())}).Increment();
  complexity_->Observe(verdict->complexity);
  duration_->Observe(seconds);
  if (span != nullptr) {
    span->SetAttribute("tiermesh.classifier.task", std::string(TaskName(verdict->task)));
    span->SetAttribute("tiermesh.classifier.complexity", static_cast<double>(verdict->complexity));
    span->SetAttribute("tiermesh.classifier.model_version", verdict->model_version);
    span->SetAttribute("tiermesh.classifier.pii", verdict->pii_detected);
  }
  return grpc::Status::OK;
}

}  // namespace tiermesh::classifier
