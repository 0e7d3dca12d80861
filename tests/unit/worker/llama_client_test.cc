// LlamaClient against a fake llama-server (loopback HTTP): what it sends, and that every failure
// — 503 "Loading model", malformed SSE, a reset or cut mid-stream, a stall, cancellation —
// becomes a non-OK status and never a clean-looking end.
#include "services/worker/llama_client.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/status/status_matchers.h"
#include "tests/fakes/http_server/fake_http_server.h"

namespace tiermesh::worker {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::FakeHttpRequest;
using ::tiermesh::testing::FakeHttpResponder;
using ::tiermesh::testing::FakeHttpServer;
using ::tiermesh::testing::StatusIs;
using Json = nlohmann::json;

std::string ContentChunk(const std::string& text) {
  return absl::StrCat(
      "data: ",
      Json{
          {"choices", {{{"index", 0}, {"finish_reason", nullptr}, {"delta", {{"content", text}}}}}},
          {"model", "m"},
          {"object", "chat.completion.chunk"}}
          .dump(),
      "\n\n");
}
const char kFinishChunk[] =
    "data: {\"choices\":[{\"index\":0,\"finish_reason\":\"length\",\"delta\":{}}],"
    "\"model\":\"m\"}\n\n";
const char kUsageChunk[] =
    "data: {\"choices\":[],\"model\":\"m\",\"usage\":{\"completion_tokens\":3,"
    "\"prompt_tokens\":5,\"total_tokens\":8}}\n\n";
const char kDone[] = "data: [DONE]\n\n";
const char kSse[] = "text/event-stream";

tiermesh::v1::GenerateRequest Chat() {
  tiermesh::v1::GenerateRequest request;
  request.set_model("tiny");
  tiermesh::v1::ChatMessage* m = request.add_messages();
  m->set_role(tiermesh::v1::ROLE_USER);
  m->set_content("hi");
  request.mutable_params()->set_max_tokens(3);
  return request;
}

class LlamaClientTest : public ::testing::Test {
 protected:
  void Serve(std::function<void(const FakeHttpRequest&, FakeHttpResponder&)> handler) {
    absl::StatusOr<std::unique_ptr<FakeHttpServer>> server = FakeHttpServer::Start(handler);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    absl::StatusOr<std::unique_ptr<http::HttpTransport>> transport =
        http::NewLoopbackHttpTransport();
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    client_ = std::make_unique<LlamaClient>(transport_.get(), server_->base_url(), "sekrit");
  }

  LlamaCallOptions Call() const {
    LlamaCallOptions options;
    options.deadline = absl::Now() + absl::Seconds(20);
    return options;
  }

  struct Streamed {
    absl::Status status;
    std::string content;
    int deltas = 0;
    StreamOutcome outcome;
  };
  Streamed StreamOnce(const LlamaCallOptions& options) {
    Streamed s;
    s.status = client_->Stream(
        Chat(), options,
        [&](const StreamDelta& d) {
          s.content += d.content;
          ++s.deltas;
          return true;
        },
        &s.outcome);
    return s;
  }

  std::unique_ptr<FakeHttpServer> server_;
  std::unique_ptr<http::HttpTransport> transport_;
  std::unique_ptr<LlamaClient> client_;
};

TEST_F(LlamaClientTest, UnarySendsTheRequestAndParsesTheAnswer) {
  Serve([](const FakeHttpRequest& request, FakeHttpResponder& responder) {
    responder.Respond(200, R"({"choices":[{"index":0,"finish_reason":"length",
        "message":{"role":"assistant","content":"abc"}}],"model":"m",
        "usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}})");
  });
  LlamaCallOptions options = Call();
  options.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  ASSERT_OK_AND_ASSIGN(LlamaCompletion c, client_->Complete(Chat(), options));
  EXPECT_EQ(c.content, "abc");
  EXPECT_EQ(c.usage->completion_tokens, 3);

  const std::vector<FakeHttpRequest> requests = server_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/v1/chat/completions");
  EXPECT_EQ(requests[0].Header("Authorization"), "Bearer sekrit");
  EXPECT_EQ(requests[0].Header("traceparent"), options.traceparent);
  EXPECT_EQ(requests[0].Header("Content-Type"), "application/json");
  const Json body = Json::parse(requests[0].body);
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["max_tokens"], 3);
}

TEST_F(LlamaClientTest, InvalidRequestsNeverReachTheServer) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, "{}"); });
  tiermesh::v1::GenerateRequest bad = Chat();
  bad.mutable_params()->set_temperature(5);
  EXPECT_THAT(client_->Complete(bad, Call()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT(client_->Stream(
                  bad, Call(), [](const StreamDelta&) { return true; }, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(LlamaClientTest, LoadingModelIsUnavailable) {
  Serve([](const FakeHttpRequest& request, FakeHttpResponder& responder) {
    responder.Respond(503,
                      R"({"error":{"code":503,"message":"Loading model",)"
                      R"("type":"unavailable_error"}})",
                      {{"Content-Type", "application/json"}});
  });
  EXPECT_THAT(client_->Complete(Chat(), Call()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Loading model")));
  EXPECT_THAT(StreamOnce(Call()).status,
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Loading model")));
  ASSERT_OK_AND_ASSIGN(int health, client_->Health(Call()));
  EXPECT_EQ(health, 503);
}

TEST_F(LlamaClientTest, CompleteStreamIsOk) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& responder) {
    responder.StartChunked(200, {{"Content-Type", kSse}});
    responder.Write(": keep-alive\n\n");
    responder.Write(ContentChunk("he"));
    // A character split across two chunks of the body arrives whole.
    const std::string second = ContentChunk("llo \xC3\xA9");
    responder.Write(second.substr(0, second.size() / 2));
    responder.Write(second.substr(second.size() / 2));
    responder.Write(kFinishChunk);
    responder.Write(kUsageChunk);
    responder.Write(kDone);
  });
  Streamed s = StreamOnce(Call());
  ASSERT_OK(s.status);
  EXPECT_EQ(s.content, "hello \xC3\xA9");
  EXPECT_EQ(s.deltas, 2);
  EXPECT_EQ(s.outcome.finish_reason, tiermesh::v1::FINISH_REASON_LENGTH);
  ASSERT_TRUE(s.outcome.usage.has_value());
  EXPECT_EQ(s.outcome.usage->completion_tokens, 3);
  const Json body = Json::parse(server_->requests()[0].body);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
}

TEST_F(LlamaClientTest, BrokenStreamsEndWithAnErrorAfterTheirDeltas) {
  struct Case {
    const char* name;
    std::function<void(FakeHttpResponder&)> respond;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"reset mid-stream",
       [](FakeHttpResponder& r) {
         r.StartChunked(200, {{"Content-Type", kSse}});
         r.Write(ContentChunk("par"));
         r.Sleep(absl::Milliseconds(20));
         r.ResetConnection();
       },
       absl::StatusCode::kUnavailable, ""},
      {"connection closed mid-body",
       [](FakeHttpResponder& r) {
         r.StartChunked(200, {{"Content-Type", kSse}});
         r.Write(ContentChunk("par"));
         r.CloseConnection();
       },
       absl::StatusCode::kUnavailable, ""},
      {"body ends cleanly without [DONE]",
       [](FakeHttpResponder& r) {
         r.StartChunked(200, {{"Content-Type", kSse}});
         r.Write(ContentChunk("par"));
       },
       absl::StatusCode::kUnavailable, "before [DONE]"},
      {"body ends inside an event",
       [](FakeHttpResponder& r) {
         r.StartChunked(200, {{"Content-Type", kSse}});
         r.Write(ContentChunk("par"));
         r.Write("data: {\"choi");
       },
       absl::StatusCode::kUnavailable, "llama-server stream"},
      {"malformed chunk",
       [](FakeHttpResponder& r) {
         r.StartChunked(200, {{"Content-Type", kSse}});
         r.Write(ContentChunk("par"));
         r.Write("data: {not json}\n\n");
         r.Write(kDone);
       },
       absl::StatusCode::kInternal, "malformed"},
      {"error event after tokens",
       [](FakeHttpResponder& r) {
         r.StartChunked(200, {{"Content-Type", kSse}});
         r.Write(ContentChunk("par"));
         r.Write(
             "data: {\"error\":{\"code\":500,\"message\":\"decode failed\","
             "\"type\":\"server_error\"}}\n\n");
       },
       absl::StatusCode::kInternal, "decode failed"},
  };
  for (const Case& c : cases) {
    Serve([&c](const FakeHttpRequest&, FakeHttpResponder& r) { c.respond(r); });
    Streamed s = StreamOnce(Call());
    EXPECT_THAT(s.status, StatusIs(c.code, HasSubstr(c.message))) << c.name;
    EXPECT_EQ(s.content, "par") << c.name;  // what arrived before the failure was delivered
  }
}

TEST_F(LlamaClientTest, StallFailsWithTheIdleTimeout) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200, {{"Content-Type", kSse}});
    r.Write(ContentChunk("par"));
    r.Stall();
  });
  LlamaCallOptions options = Call();
  options.idle_timeout = absl::Milliseconds(200);
  Streamed s = StreamOnce(options);
  EXPECT_THAT(s.status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("stalled")));
  EXPECT_EQ(s.content, "par");
}

TEST_F(LlamaClientTest, CancellationAbortsTheRequestAtOnce) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200, {{"Content-Type", kSse}});
    r.Write(ContentChunk("par"));
    r.WaitForClientClose(absl::Seconds(20));
  });
  LlamaCallOptions options = Call();
  options.cancel = std::make_shared<http::CancellationToken>();
  std::atomic<bool> got_delta{false};
  absl::Status status;
  std::thread streamer([&] {
    status = client_->Stream(
        Chat(), options,
        [&](const StreamDelta&) {
          got_delta = true;
          return true;
        },
        nullptr);
  });
  while (!got_delta) absl::SleepFor(absl::Milliseconds(1));
  const absl::Time cancelled_at = absl::Now();
  options.cancel->Cancel();
  streamer.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("")));
  EXPECT_LT(absl::Now() - cancelled_at, absl::Milliseconds(250));
  // The server sees the connection go away (so llama-server would free the slot).
  EXPECT_TRUE(server_->WaitForClosedConnections(1, absl::Seconds(5)));
}

TEST_F(LlamaClientTest, CallerStoppingIsCancelled) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200, {{"Content-Type", kSse}});
    r.Write(ContentChunk("a"));
    r.Write(ContentChunk("b"));
    r.WaitForClientClose(absl::Seconds(20));
  });
  int deltas = 0;
  const absl::Status status = client_->Stream(
      Chat(), Call(),
      [&](const StreamDelta&) {
        ++deltas;
        return false;
      },
      nullptr);
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("stopped reading")));
  EXPECT_EQ(deltas, 1);
}

TEST_F(LlamaClientTest, DeadlineBeforeTheAnswerIsDeadlineExceeded) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Stall(); });
  LlamaCallOptions options = Call();
  options.deadline = absl::Now() + absl::Milliseconds(100);
  EXPECT_THAT(client_->Complete(Chat(), options),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("llama-server")));
}

TEST_F(LlamaClientTest, LoadEndpoints) {
  Serve([](const FakeHttpRequest& request, FakeHttpResponder& r) {
    if (request.path == "/slots") {
      r.Respond(200, R"([{"id":0,"n_ctx":512,"is_processing":true,"n_prompt_tokens":128},
                         {"id":1,"n_ctx":512,"is_processing":false}])");
    } else if (request.path == "/props") {
      r.Respond(200, R"({"total_slots":2,"default_generation_settings":{"n_ctx":512}})");
    } else if (request.path == "/metrics") {
      r.Respond(501, R"({"error":{"code":501,"message":"This server does not support metrics )"
                     R"(endpoint. Start it with `--metrics`","type":"not_supported_error"}})");
    } else {
      r.Respond(404, "");
    }
  });
  ASSERT_OK_AND_ASSIGN(SlotsSnapshot slots, client_->Slots(Call()));
  EXPECT_EQ(slots.busy, 1);
  ASSERT_OK_AND_ASSIGN(PropsSnapshot props, client_->Props(Call()));
  EXPECT_EQ(props.total_slots, 2);
  EXPECT_THAT(client_->Metrics(Call()),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("--metrics")));
  EXPECT_EQ(server_->requests()[0].Header("Authorization"), "Bearer sekrit");
}

TEST_F(LlamaClientTest, NothingListeningIsUnavailable) {
  Serve([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, ""); });
  const std::string url = server_->base_url();
  server_.reset();  // closes the listening socket: connections are refused
  LlamaClient client(transport_.get(), url, "");
  EXPECT_THAT(client.Health(Call()), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("")));
  EXPECT_THAT(client.Complete(Chat(), Call()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("llama-server")));
}

}  // namespace
}  // namespace tiermesh::worker
