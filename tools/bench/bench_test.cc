#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tiermesh/v1/router.grpc.pb.h"
#include "tools/bench/bench_stats.h"
#include "tools/bench/load_generator.h"

namespace tiermesh::bench {
namespace {

TEST(NearestRankTest, Table) {
  const std::vector<double> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(NearestRank(ten, 0.5), 5);
  EXPECT_EQ(NearestRank(ten, 0.9), 9);
  EXPECT_EQ(NearestRank(ten, 0.99), 10);
  EXPECT_EQ(NearestRank(ten, 0.0), 1);
  EXPECT_EQ(NearestRank(ten, 1.0), 10);
  EXPECT_EQ(NearestRank({7}, 0.5), 7);
  EXPECT_EQ(NearestRank({}, 0.5), 0);
}

TEST(ComputePercentilesTest, UnsortedInput) {
  Percentiles p = ComputePercentiles({30, 10, 20, 40});
  EXPECT_EQ(p.count, 4u);
  EXPECT_EQ(p.p50, 20);
  EXPECT_EQ(p.p90, 40);
  EXPECT_EQ(p.max, 40);
  EXPECT_DOUBLE_EQ(p.mean, 25);
}

TEST(SummarizeRunTest, CountsOutcomesAndTtft) {
  std::vector<CallRecord> calls(4);
  calls[0].latency_ms = 2;
  calls[1].latency_ms = 4;
  calls[1].ttft_ms = 1;
  calls[1].deltas = 3;
  calls[2].code = "UNAVAILABLE";
  calls[2].latency_ms = 1;
  calls[3].code = "UNAVAILABLE";
  calls[3].latency_ms = 1;
  nlohmann::json r = SummarizeRun(calls, 2.0);
  EXPECT_EQ(r["requests"], 4);
  EXPECT_EQ(r["ok"], 2);
  EXPECT_EQ(r["errors"]["UNAVAILABLE"], 2);
  EXPECT_EQ(r["throughput_rps"], 2.0);
  EXPECT_EQ(r["latency_ms"]["p50"], 1.0);
  EXPECT_EQ(r["latency_ms"]["max"], 4.0);
  EXPECT_EQ(r["ttft_ms"]["count"], 1);
  EXPECT_EQ(r["stream_deltas"], 3);
  EXPECT_TRUE(SummarizeRun({}, 0)["ttft_ms"].is_null());
}

TEST(StatusCodeNameTest, Names) {
  EXPECT_EQ(StatusCodeName(0), "OK");
  EXPECT_EQ(StatusCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(99), "CODE_99");
}

// Instant backends; every third call fails UNAVAILABLE so that errors are counted by code.
class FakeInference final : public v1::InferenceService::Service {
 public:
  grpc::Status Generate(grpc::ServerContext*, const v1::GenerateRequest* request,
                        v1::GenerateResponse* response) override {
    if (request->model() != "m") return grpc::Status(grpc::StatusCode::NOT_FOUND, "model");
    if (++calls_ % 3 == 0) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "injected");
    response->mutable_message()->set_content("hi");
    return grpc::Status::OK;
  }
  grpc::Status GenerateStream(grpc::ServerContext*, const v1::GenerateStreamRequest*,
                              grpc::ServerWriter<v1::GenerateStreamResponse>* writer) override {
    v1::GenerateStreamResponse r;
    r.mutable_delta()->set_content("a");
    writer->Write(r);
    writer->Write(r);
    v1::GenerateStreamResponse end;
    end.mutable_summary()->set_complete(true);
    writer->Write(end);
    return grpc::Status::OK;
  }
  std::atomic<int> calls_{0};
};

class FakeRouter final : public v1::RouterService::Service {
 public:
  grpc::Status Chat(grpc::ServerContext* context, const v1::ChatRequest*,
                    v1::ChatResponse* response) override {
    auto auth = context->client_metadata().find("authorization");
    if (auth == context->client_metadata().end() || auth->second != "Bearer k") {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "key");
    }
    response->mutable_message()->set_content("hi");
    return grpc::Status::OK;
  }
  grpc::Status ChatStream(grpc::ServerContext*, const v1::ChatStreamRequest*,
                          grpc::ServerWriter<v1::ChatStreamResponse>* writer) override {
    v1::ChatStreamResponse decision;
    decision.mutable_decision()->set_tier("t");
    writer->Write(decision);
    v1::ChatStreamResponse delta;
    delta.mutable_delta()->set_content("a");
    writer->Write(delta);
    return grpc::Status::OK;
  }
};

class LoadGeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&inference_);
    builder.RegisterService(&router_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_->Shutdown(); }

  FakeInference inference_;
  FakeRouter router_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

LoadOptions Options(LoadTarget target, LoadMode mode) {
  LoadOptions o;
  o.target = target;
  o.mode = mode;
  o.concurrency = 4;
  o.duration = absl::Milliseconds(400);
  o.prompts = {"one", "two"};
  o.model = "m";
  o.api_key = "k";
  return o;
}

TEST_F(LoadGeneratorTest, InferenceUnaryCountsErrorsByCode) {
  absl::StatusOr<nlohmann::json> r =
      RunLoad(Options(LoadTarget::kInference, LoadMode::kUnary), {channel_});
  ASSERT_TRUE(r.ok()) << r.status();
  const int64_t requests = (*r)["requests"];
  EXPECT_GT(requests, 10);
  EXPECT_EQ((*r)["ok"].get<int64_t>() + (*r)["errors"]["UNAVAILABLE"].get<int64_t>(), requests);
  EXPECT_GT((*r)["errors"]["UNAVAILABLE"].get<int64_t>(), 0);
  EXPECT_GT((*r)["throughput_rps"].get<double>(), 0);
  EXPECT_GT((*r)["latency_ms"]["p50"].get<double>(), 0);
  EXPECT_TRUE((*r)["ttft_ms"].is_null());
  EXPECT_EQ((*r)["run"]["target"], "inference");
}

TEST_F(LoadGeneratorTest, InferenceStreamMeasuresTtft) {
  absl::StatusOr<nlohmann::json> r =
      RunLoad(Options(LoadTarget::kInference, LoadMode::kStream), {channel_, channel_});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["ok"], (*r)["requests"]);
  EXPECT_EQ((*r)["ttft_ms"]["count"], (*r)["requests"]);
  EXPECT_EQ((*r)["stream_deltas"].get<int64_t>(), 2 * (*r)["requests"].get<int64_t>());
  EXPECT_LE((*r)["ttft_ms"]["p50"].get<double>(), (*r)["latency_ms"]["p50"].get<double>());
}

TEST_F(LoadGeneratorTest, RouterSendsTheKeyAndStopsAtTheRequestCount) {
  LoadOptions o = Options(LoadTarget::kRouter, LoadMode::kUnary);
  o.duration = absl::Seconds(20);
  o.max_requests = 50;
  absl::StatusOr<nlohmann::json> r = RunLoad(o, {channel_});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["requests"], 50);
  EXPECT_EQ((*r)["ok"], 50);
  o.api_key = "wrong";
  r = RunLoad(o, {channel_});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)["errors"]["UNAUTHENTICATED"], 50);
}

TEST_F(LoadGeneratorTest, RouterStreamOpenLoop) {
  LoadOptions o = Options(LoadTarget::kRouter, LoadMode::kStream);
  o.rate = 100;
  o.duration = absl::Milliseconds(500);
  absl::StatusOr<nlohmann::json> r = RunLoad(o, {channel_});
  ASSERT_TRUE(r.ok()) << r.status();
  // 100/s for 0.5 s: about 50 calls (scheduling slack allowed).
  EXPECT_GE((*r)["requests"].get<int64_t>(), 25);
  EXPECT_LE((*r)["requests"].get<int64_t>(), 52);
  EXPECT_EQ((*r)["ok"], (*r)["requests"]);
  EXPECT_EQ((*r)["ttft_ms"]["count"], (*r)["requests"]);
}

TEST(RunLoadTest, RejectsBadOptions) {
  LoadOptions o;
  EXPECT_FALSE(RunLoad(o, {}).ok());
  auto channel = grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
  EXPECT_EQ(RunLoad(o, {channel}).status().code(), absl::StatusCode::kInvalidArgument);  // prompts
  o.prompts = {"x"};
  o.target = LoadTarget::kInference;
  EXPECT_EQ(RunLoad(o, {channel}).status().code(), absl::StatusCode::kInvalidArgument);  // model
}

}  // namespace
}  // namespace tiermesh::bench
