// ClassifierService in-process over loopback gRPC (port 0), with the real
// server lifecycle from services/common/server.
#include "services/classifier/classifier_service.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

#include "services/classifier/config.h"
#include "services/common/config/loader.h"
#include "services/common/server/server.h"
#include "services/common/status/status_matchers.h"
#include "tiermesh/v1/classifier.grpc.pb.h"

namespace tiermesh::classifier {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ClassifierServiceTest : public ::testing::Test {
 protected:
  void StartWith(ClassifierOptions options, std::shared_ptr<ModelStore> models) {
    registry_ = std::make_shared<prometheus::Registry>();
    auto classifier = std::make_shared<const Classifier>(options, std::move(models));
    absl::StatusOr<std::unique_ptr<ClassifierServiceImpl>> service =
        ClassifierServiceImpl::Create(classifier, registry_.get(), nullptr);
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = *std::move(service);
    server::ServerOptions server_options;
    server_options.service_name = "classifier-test";
    server_options.grpc_address = "127.0.0.1:0";
    server_options.drain_timeout = absl::Seconds(5);
    server::ServerComponents parts;
    parts.services = {service_.get()};
    parts.metrics_registry = registry_;
    absl::StatusOr<std::unique_ptr<server::RunningServer>> running =
        server::RunningServer::Start(server_options, parts);
    ASSERT_TRUE(running.ok()) << running.status();
    server_ = *std::move(running);
    server_->SetServing(true);
    stub_ = v1::ClassifierService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  grpc::Status Call(const v1::ClassifyRequest& request, v1::ClassifyResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub_->Classify(&context, request, response);
  }

  // Value of a counter child / sample count of a histogram in the registry.
  double Metric(const std::string& name, const std::string& label, const std::string& value) {
    for (const prometheus::MetricFamily& family : registry_->Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& m : family.metric) {
        bool match = label.empty();
        for (const prometheus::ClientMetric::Label& l : m.label) {
          match = match || (l.name == label && l.value == value);
        }
        if (!match) continue;
        if (family.type == prometheus::MetricType::Histogram) {
          return static_cast<double>(m.histogram.sample_count);
        }
        return m.counter.value;
      }
    }
    return -1;
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ClassifierServiceImpl> service_;
  std::unique_ptr<server::RunningServer> server_;
  std::unique_ptr<v1::ClassifierService::Stub> stub_;
};

TEST_F(ClassifierServiceTest, ClassifiesAndRecordsMetrics) {
  StartWith({ClassifierMode::kHeuristic, kDefaultMaxRequestBytes, 5}, nullptr);
  v1::ClassifyRequest request;
  request.set_text("What's the weather in Lisbon today? Email me at ana@example.pt");
  v1::ClassifyResponse response;
  const grpc::Status status = Call(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::Classification& c = response.classification();
  EXPECT_EQ(c.task(), v1::TASK_TYPE_TOOL);
  EXPECT_EQ(c.probabilities_size(), 5);
  EXPECT_TRUE(c.pii_detected());
  EXPECT_EQ(c.pii_kinds(0), "email");
  EXPECT_EQ(c.model_version(), "heuristic");
  EXPECT_GT(c.approx_tokens(), 0);
  EXPECT_EQ(Metric("tiermesh_classifier_requests_total", "task", "tool"), 1);
  EXPECT_EQ(Metric("tiermesh_classifier_complexity", "", ""), 1);
  EXPECT_EQ(Metric("tiermesh_classifier_duration_seconds", "", ""), 1);
}

TEST_F(ClassifierServiceTest, BadRequestsAreInvalidArgumentWithClearMessages) {
  StartWith({ClassifierMode::kHeuristic, 4096, 5}, nullptr);
  struct Case {
    v1::ClassifyRequest request;
    std::string message;
  };
  std::vector<Case> cases(4);
  cases[0].message = "no messages";
  cases[1].request.add_messages()->set_content(" \n ");
  cases[1].message = "empty";
  cases[2].request.set_text(std::string(5000, 'a'));
  cases[2].message = "over the limit of 4096 bytes";
  cases[3].request.set_text("a");
  cases[3].request.add_messages()->set_content("b");
  cases[3].message = "not both";
  for (const Case& c : cases) {
    v1::ClassifyResponse response;
    const grpc::Status status = Call(c.request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  EXPECT_EQ(Metric("tiermesh_classifier_requests_total", "task", "invalid"), 4);
}

TEST_F(ClassifierServiceTest, LearnedModeWithTheShippedModel) {
  const char* root = std::getenv("TIERMESH_SOURCE_DIR");
  absl::StatusOr<std::unique_ptr<ModelStore>> store = ModelStore::Open(
      std::string(root != nullptr ? root : ".") + "/models/classifier/default.tmcl");
  ASSERT_TRUE(store.ok()) << store.status();
  StartWith({}, *std::move(store));
  v1::ClassifyRequest request;
  auto* system = request.add_messages();
  system->set_role(v1::ROLE_SYSTEM);
  system->set_content("You are a helpful assistant.");
  auto* user = request.add_messages();
  user->set_role(v1::ROLE_USER);
  user->set_content("Is it going to snow in Denver tomorrow?");
  auto* tool = request.add_tools();
  tool->set_name("get_forecast");
  tool->set_description("Weather forecast for a city");
  v1::ClassifyResponse response;
  const grpc::Status status = Call(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.classification().task(), v1::TASK_TYPE_TOOL);
  EXPECT_THAT(response.classification().model_version(), StartsWith("default.tmcl@"));
  EXPECT_GT(response.classification().reasons_size(), 0);
  EXPECT_GT(response.classification().confidence(), 0.5f);
}

TEST(ClassifierServiceConfigTest, ParsesAndValidates) {
  absl::StatusOr<ClassifierServiceConfig> c =
      config::LoadConfigText("mode: heuristic\nmax_request_bytes: 65536\nmodel_poll_interval: 0s\n",
                             "c.yaml", config::MapEnv({}), ParseClassifierServiceConfig);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->mode, ClassifierMode::kHeuristic);
  EXPECT_EQ(c->max_request_bytes, 65536);
  EXPECT_EQ(c->model_poll_interval, absl::ZeroDuration());
  EXPECT_EQ(c->options().max_request_bytes, 65536u);
  absl::StatusOr<ClassifierServiceConfig> defaults =
      config::LoadConfigText("", "c.yaml", config::MapEnv({}), ParseClassifierServiceConfig);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->mode, ClassifierMode::kLearned);
  EXPECT_EQ(defaults->max_request_bytes, 262144);
  for (const char* bad : {"mode: smart\n", "max_request_bytes: 10\n", "modle: x\n",
                          "max_reasons: 100\n", "model: \"\"\n"}) {
    absl::StatusOr<ClassifierServiceConfig> r =
        config::LoadConfigText(bad, "c.yaml", config::MapEnv({}), ParseClassifierServiceConfig);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), StartsWith("c.yaml")) << bad;
  }
}

}  // namespace
}  // namespace tiermesh::classifier
