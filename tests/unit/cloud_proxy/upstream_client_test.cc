// UpstreamClient against the fake provider over real loopback HTTP (libcurl),
// for each of the three APIs: unary, streaming, tools, usage exact against the
// fake's ledger, error mapping, Retry-After, cut/stall/malformed streams,
// cancellation and per-request keys.
#include "services/cloud_proxy/upstream_client.h"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/cloud_proxy/errors.h"
#include "services/cloud_proxy/pricing.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "services/common/tracing/otlp_json.h"
#include "services/common/tracing/span_context.h"
#include "services/common/tracing/tracer.h"
#include "tests/fakes/fake_provider/fake_provider.h"
#include "tests/unit/common/tracing/tracing_fakes.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::FakeApi;
using ::tiermesh::testing::FakeAttempt;
using ::tiermesh::testing::FakeModelScript;
using ::tiermesh::testing::FakeProvider;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

constexpr char kKey[] = "test-key-0123456789";

FakeModelScript Reply(std::string text) {
  FakeModelScript s;
  s.reply = std::move(text);
  return s;
}

struct Api {
  const char* name;
  ProviderKind kind;
  FakeApi fake;
};

class UpstreamClientTest : public ::testing::TestWithParam<Api> {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(fake_, FakeProvider::Start());
    fake_->SetAcceptedKeys({kKey, "byok-user-key-42"});
    // Hermetic: never a proxy from the environment.
    ASSERT_OK_AND_ASSIGN(transport_, tiermesh::http::NewLoopbackHttpTransport());
    ProviderConfig config;
    config.name = GetParam().name;
    config.kind = GetParam().kind;
    config.base_url = GetParam().kind == ProviderKind::kOpenAiCompatible ? fake_->openai_base_url()
                                                                         : fake_->base_url();
    config.idle_timeout = absl::Seconds(5);
    adapter_ = MakeProviderAdapter(config);
    model_.name = "m";
    model_.upstream = "fake-model";
    ASSERT_OK_AND_ASSIGN(model_.price, MakePrice("3", "15", "0.3"));
    client_ = std::make_unique<UpstreamClient>(transport_.get(), [] { return absl::Now(); });
  }

  UpstreamCall Call(std::string key = kKey) {
    return {adapter_.get(), &model_, std::move(key), absl::Now() + absl::Seconds(20), nullptr};
  }

  static tiermesh::v1::GenerateRequest Hello() {
    tiermesh::v1::GenerateRequest req;
    req.set_model("m");
    auto* m = req.add_messages();
    m->set_role(tiermesh::v1::ROLE_USER);
    m->set_content("Say hello");
    return req;
  }

  struct Streamed {
    UpstreamStreamResult result;
    std::string text;
    std::map<int, std::pair<std::string, std::string>> calls;  // name, args
  };

  Streamed Stream(const UpstreamCall& call, const tiermesh::v1::GenerateRequest& req,
                  std::function<bool(const StreamUpdate&)> extra = nullptr) {
    Streamed s;
    s.result = client_->GenerateStream(call, req, [&](const StreamUpdate& u) {
      s.text += u.delta.content();
      for (const auto& d : u.delta.tool_calls()) {
        if (!d.name().empty()) s.calls[d.index()].first = d.name();
        s.calls[d.index()].second += d.arguments_json_delta();
      }
      return extra ? extra(u) : true;
    });
    return s;
  }

  FakeAttempt OnlyAttempt() {
    EXPECT_TRUE(fake_->WaitForAttempts(1, absl::Seconds(5)));
    std::vector<FakeAttempt> a = fake_->attempts();
    EXPECT_EQ(a.size(), 1u);
    return a.empty() ? FakeAttempt{} : a[0];
  }

  std::unique_ptr<FakeProvider> fake_;
  std::unique_ptr<tiermesh::http::HttpTransport> transport_;
  std::unique_ptr<ProviderAdapter> adapter_;
  ModelConfig model_;
  std::unique_ptr<UpstreamClient> client_;
};

void ExpectUsageMatchesLedger(const tiermesh::v1::Usage& usage, const FakeAttempt& a,
                              const Price& price) {
  EXPECT_EQ(usage.prompt_tokens(), a.prompt_tokens);
  EXPECT_EQ(usage.completion_tokens(), a.completion_tokens);
  EXPECT_EQ(usage.total_tokens(), a.prompt_tokens + a.completion_tokens);
  EXPECT_FALSE(usage.estimated());
  // Cost from the reported usage equals the cost of what the fake charged.
  tiermesh::v1::Usage ledger;
  ledger.set_prompt_tokens(a.prompt_tokens);
  ledger.set_completion_tokens(a.completion_tokens);
  absl::StatusOr<tiermesh::v1::Cost> want = ComputeCost(ledger, price, false);
  absl::StatusOr<tiermesh::v1::Cost> got = ComputeCost(usage, price, false);
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_EQ(got->nano_usd(), want->nano_usd());
  EXPECT_GT(got->nano_usd(), 0);
}

TEST_P(UpstreamClientTest, UnaryMatchesTheLedger) {
  fake_->SetModel("fake-model", Reply("Hello there, world"));
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, client_->Generate(Call(), Hello()));
  EXPECT_EQ(r.message().content(), "Hello there, world");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.model(), "fake-model");
  const FakeAttempt a = OnlyAttempt();
  EXPECT_FALSE(a.stream);
  EXPECT_TRUE(a.completed);
  EXPECT_EQ(a.completion_tokens, 3);
  EXPECT_EQ(a.api_key, kKey);
  ExpectUsageMatchesLedger(r.usage(), a, model_.price);
}

TEST_P(UpstreamClientTest, StreamMatchesTheLedger) {
  fake_->SetModel("fake-model", Reply("One two three four five"));
  Streamed s = Stream(Call(), Hello());
  ASSERT_THAT(s.result.status, IsOk());
  EXPECT_EQ(s.text, "One two three four five");
  EXPECT_EQ(s.result.finish_reason, tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_TRUE(s.result.first_token_at.has_value());
  const FakeAttempt a = OnlyAttempt();
  EXPECT_TRUE(a.stream);
  EXPECT_TRUE(a.completed);
  EXPECT_EQ(a.completion_tokens, 5);
  ExpectUsageMatchesLedger(s.result.usage, a, model_.price);
}

TEST_P(UpstreamClientTest, ToolCallsUnaryAndStreamed) {
  FakeModelScript script;
  script.reply = "";
  script.tool_calls = {{"get_weather", R"({"city":"Oslo","unit":"celsius"})"},
                       {"get_time", R"({"tz":"Europe/Oslo"})"}};
  fake_->SetModel("fake-model", script);
  tiermesh::v1::GenerateRequest req = Hello();
  req.add_tools()->set_name("get_weather");
  req.add_tools()->set_name("get_time");

  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, client_->Generate(Call(), req));
  ASSERT_EQ(r.message().tool_calls_size(), 2);
  EXPECT_EQ(r.message().tool_calls(0).name(), "get_weather");
  EXPECT_EQ(nlohmann::json::parse(r.message().tool_calls(0).arguments_json()),
            nlohmann::json::parse(R"({"city":"Oslo","unit":"celsius"})"));
  EXPECT_FALSE(r.message().tool_calls(0).id().empty());
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);

  Streamed s = Stream(Call(), req);
  ASSERT_THAT(s.result.status, IsOk());
  ASSERT_EQ(s.calls.size(), 2u);
  EXPECT_EQ(s.calls[0].first, "get_weather");
  EXPECT_EQ(nlohmann::json::parse(s.calls[0].second),
            nlohmann::json::parse(R"({"city":"Oslo","unit":"celsius"})"));
  EXPECT_EQ(s.calls[1].first, "get_time");
  EXPECT_EQ(s.result.finish_reason, tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  ASSERT_TRUE(fake_->WaitForAttempts(2, absl::Seconds(5)));
  ExpectUsageMatchesLedger(s.result.usage, fake_->attempts()[1], model_.price);
}

TEST_P(UpstreamClientTest, MaxTokensEndsWithLength) {
  fake_->SetModel("fake-model", Reply("a b c d e f g h"));
  tiermesh::v1::GenerateRequest req = Hello();
  req.mutable_params()->set_max_tokens(3);
  Streamed s = Stream(Call(), req);
  ASSERT_THAT(s.result.status, IsOk());
  EXPECT_EQ(s.text, "a b c");
  EXPECT_EQ(s.result.finish_reason, tiermesh::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(s.result.usage.completion_tokens(), 3);
  EXPECT_EQ(OnlyAttempt().completion_tokens, 3);
}

struct ErrorScript {
  std::string name;
  FakeModelScript script;
  absl::StatusCode code;
  std::string reason;  // "" = don't check
  absl::optional<absl::Duration> retry_after;
};

std::vector<ErrorScript> ErrorScripts(FakeApi api) {
  auto script = [](int status, std::string message = "", std::string code = "",
                   absl::optional<int64_t> retry = absl::nullopt) {
    FakeModelScript s;
    s.status = status;
    s.error_message = std::move(message);
    s.error_code = std::move(code);
    s.retry_after_seconds = retry;
    return s;
  };
  std::string context_message;
  std::string context_code;
  switch (api) {
    case FakeApi::kOpenAi:
      context_message = "This model's maximum context length is 8192 tokens.";
      context_code = "context_length_exceeded";
      break;
    case FakeApi::kAnthropic:
      context_message = "prompt is too long: 250000 tokens > 200000 maximum";
      break;
    case FakeApi::kGemini:
      context_message =
          "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).";
      break;
  }
  std::vector<ErrorScript> out = {
      {"rate_limited", script(429, "slow down", "", 7), absl::StatusCode::kResourceExhausted, "",
       absl::Seconds(7)},
      {"unauthenticated", script(401), absl::StatusCode::kUnauthenticated, "", absl::nullopt},
      {"permission", script(403), absl::StatusCode::kPermissionDenied, "", absl::nullopt},
      {"context", script(400, context_message, context_code), absl::StatusCode::kOutOfRange,
       "context_length_exceeded", absl::nullopt},
      {"server_error", script(500), absl::StatusCode::kUnavailable, "", absl::nullopt},
      {"unavailable_retry", script(503, "", "", 2), absl::StatusCode::kUnavailable, "",
       absl::Seconds(2)},
  };
  if (api == FakeApi::kAnthropic) {
    out.push_back({"overloaded", script(529), absl::StatusCode::kUnavailable, "overloaded_error",
                   absl::nullopt});
  }
  if (api == FakeApi::kOpenAi) {
    FakeModelScript filtered = script(400, "filtered", "content_filter");
    out.push_back({"content_policy", filtered, absl::StatusCode::kFailedPrecondition,
                   "content_policy", absl::nullopt});
  }
  return out;
}

TEST_P(UpstreamClientTest, ErrorsMapUnaryAndStreaming) {
  for (const ErrorScript& e : ErrorScripts(GetParam().fake)) {
    SCOPED_TRACE(e.name);
    fake_->SetModel("fake-model", e.script);
    absl::StatusOr<tiermesh::v1::GenerateResponse> r = client_->Generate(Call(), Hello());
    EXPECT_EQ(r.status().code(), e.code) << r.status();
    if (!e.reason.empty()) {
      EXPECT_EQ(ErrorReason(r.status()), e.reason);
    }
    EXPECT_EQ(GetRetryAfter(r.status()), e.retry_after);
    Streamed s = Stream(Call(), Hello());
    EXPECT_EQ(s.result.status.code(), e.code) << s.result.status;
    if (!e.reason.empty()) {
      EXPECT_EQ(ErrorReason(s.result.status), e.reason);
    }
    EXPECT_EQ(GetRetryAfter(s.result.status), e.retry_after);
    EXPECT_EQ(s.result.usage.completion_tokens(), 0);
  }
}

TEST_P(UpstreamClientTest, CutStallMalformedAndErrorEventsAreNeverClean) {
  struct Fault {
    std::string name;
    std::function<void(FakeModelScript&)> set;
    std::string reason;
  };
  const std::vector<Fault> faults = {
      {"cut", [](FakeModelScript& s) { s.cut_after_tokens = 2; }, "connection_reset"},
      {"stall", [](FakeModelScript& s) { s.stall_after_tokens = 2; }, "stream_stalled"},
      {"malformed", [](FakeModelScript& s) { s.malformed_after_tokens = 2; }, "malformed_response"},
      {"error_event", [](FakeModelScript& s) { s.error_event_after_tokens = 2; }, ""},
  };
  ProviderConfig config = adapter_->config();
  config.idle_timeout = absl::Milliseconds(300);
  adapter_ = MakeProviderAdapter(config);
  for (const Fault& f : faults) {
    SCOPED_TRACE(f.name);
    FakeModelScript script;
    script.reply = "alpha beta gamma delta epsilon";
    f.set(script);
    fake_->SetModel("fake-model", script);
    Streamed s = Stream(Call(), Hello());
    EXPECT_FALSE(s.result.status.ok());
    EXPECT_EQ(s.result.status.code(), absl::StatusCode::kUnavailable) << s.result.status;
    if (!f.reason.empty()) {
      EXPECT_EQ(ErrorReason(s.result.status), f.reason) << s.result.status;
    }
    EXPECT_EQ(s.text, "alpha beta");
    // Partial usage: at least what was received, never zero.
    EXPECT_GE(s.result.usage.completion_tokens(), 2);
    EXPECT_GT(s.result.usage.prompt_tokens(), 0);
  }
}

TEST_P(UpstreamClientTest, CancellationClosesTheUpstreamQuickly) {
  FakeModelScript slow;
  slow.reply = std::string(200, 'x') + " " + std::string(200, 'y');
  for (int i = 0; i < 50; ++i) slow.reply += " word";
  slow.tokens_per_second = 10;  // 5+ seconds in all
  fake_->SetModel("fake-model", slow);

  // 1. The caller's callback stops the stream.
  Streamed s = Stream(Call(), Hello(), [](const StreamUpdate& u) { return !u.has_delta(); });
  const absl::Time stopped = absl::Now();
  EXPECT_THAT(s.result.status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("stopped")));
  EXPECT_TRUE(fake_->http().WaitForClosedConnections(1, absl::Milliseconds(250)));
  EXPECT_LT(absl::Now() - stopped, absl::Milliseconds(250));

  // 2. The cancellation token fires from another thread.
  UpstreamCall call = Call();
  call.cancel = std::make_shared<tiermesh::http::CancellationToken>();
  std::atomic<bool> got_token{false};
  std::thread canceller([&] {
    while (!got_token.load()) absl::SleepFor(absl::Milliseconds(5));
    call.cancel->Cancel();
  });
  Streamed c = Stream(call, Hello(), [&](const StreamUpdate& u) {
    if (u.has_delta()) got_token = true;
    return true;
  });
  const absl::Time cancelled = absl::Now();
  canceller.join();
  EXPECT_THAT(c.result.status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancel")));
  EXPECT_TRUE(fake_->http().WaitForClosedConnections(2, absl::Milliseconds(250)));
  EXPECT_LT(absl::Now() - cancelled, absl::Milliseconds(250));
  ASSERT_TRUE(fake_->WaitForAttempts(2, absl::Seconds(2)));
  for (const FakeAttempt& a : fake_->attempts()) {
    EXPECT_FALSE(a.completed);
    EXPECT_TRUE(a.client_went_away);
  }
}

TEST_P(UpstreamClientTest, PerRequestKeyIsUsedAndNeverEchoed) {
  fake_->SetModel("fake-model", Reply("ok"));
  ASSERT_THAT(client_->Generate(Call("byok-user-key-42"), Hello()), IsOk());
  EXPECT_EQ(OnlyAttempt().api_key, "byok-user-key-42");
  for (const FakeAttempt& a : fake_->attempts()) {
    EXPECT_THAT(a.path, Not(HasSubstr("byok-user-key-42")));  // Gemini: header, not URL
  }
  // A refused key: UNAUTHENTICATED, and the key is not in the message.
  absl::StatusOr<tiermesh::v1::GenerateResponse> r =
      client_->Generate(Call("wrong-key-abcdef123456"), Hello());
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnauthenticated, Not(HasSubstr("wrong-key"))));
  Streamed s = Stream(Call("wrong-key-abcdef123456"), Hello());
  EXPECT_EQ(s.result.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(s.result.status.message()), Not(HasSubstr("wrong-key")));
}

// Passes requests to a real transport and keeps the headers each one had.
class HeaderRecordingTransport final : public tiermesh::http::HttpTransport {
 public:
  explicit HeaderRecordingTransport(tiermesh::http::HttpTransport* inner) : inner_(inner) {}
  absl::Status Send(const tiermesh::http::HttpRequest& request,
                    const tiermesh::http::HttpStreamCallbacks& callbacks) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::map<std::string, std::string> headers;
      for (const auto& h : request.headers) headers[absl::AsciiStrToLower(h.name)] = h.value;
      sent_.push_back(std::move(headers));
    }
    return inner_->Send(request, callbacks);
  }
  std::vector<std::map<std::string, std::string>> sent() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sent_;
  }

 private:
  tiermesh::http::HttpTransport* const inner_;
  mutable std::mutex mu_;
  std::vector<std::map<std::string, std::string>> sent_;
};

TEST_P(UpstreamClientTest, EachCallIsASpanWhoseTraceparentReachesTheProvider) {
  fake_->SetModel("fake-model", Reply("traced answer"));
  auto processor = std::make_shared<tiermesh::tracing::testing::CapturingProcessor>();
  tiermesh::tracing::TracerOptions options;
  options.processor = processor;
  tiermesh::tracing::Tracer tracer(options);
  HeaderRecordingTransport recording(transport_.get());
  UpstreamClient client(
      &recording, [] { return absl::Now(); }, tracer);
  // The gRPC server span this call belongs to.
  tiermesh::tracing::Span server = tracer.StartSpan("tiermesh.v1.InferenceService/Generate",
                                                    tiermesh::tracing::SpanKind::kServer);
  UpstreamCall call = Call();
  call.parent = server.context();
  ASSERT_THAT(client.Generate(call, Hello()), IsOk());
  UpstreamStreamResult streamed =
      client.GenerateStream(call, Hello(), [](const StreamUpdate&) { return true; });
  ASSERT_THAT(streamed.status, IsOk());
  server.End();

  std::vector<tiermesh::tracing::SpanData> spans = processor->Spans();
  ASSERT_EQ(spans.size(), 3u);  // two upstream calls, then the server span
  const std::vector<std::map<std::string, std::string>> sent = recording.sent();
  ASSERT_EQ(sent.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const tiermesh::tracing::SpanData& span = spans[i];
    EXPECT_EQ(span.kind, tiermesh::tracing::SpanKind::kClient);
    EXPECT_EQ(span.context.trace_id, server.context().trace_id);
    EXPECT_EQ(span.parent_span_id, server.context().span_id);
    EXPECT_EQ(span.status_code, tiermesh::tracing::SpanStatusCode::kOk);
    std::map<std::string, tiermesh::tracing::AttributeValue> attrs(span.attributes.begin(),
                                                                   span.attributes.end());
    EXPECT_EQ(attrs["tiermesh.provider"], tiermesh::tracing::AttributeValue(GetParam().name));
    EXPECT_EQ(attrs["http.response.status_code"], tiermesh::tracing::AttributeValue(200));
    EXPECT_EQ(attrs["tiermesh.stream"], tiermesh::tracing::AttributeValue(i == 1));
    // The provider sees the upstream span as the parent of its own work.
    ASSERT_EQ(sent[i].count("traceparent"), 1u);
    EXPECT_EQ(sent[i].at("traceparent"), tiermesh::tracing::FormatTraceparent(span.context));
  }
  // A failed call is an error span (with the key nowhere in it).
  ASSERT_FALSE(client.Generate(Call("wrong-key-abcdef123456"), Hello()).ok());
  spans = processor->Spans();
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[3].status_code, tiermesh::tracing::SpanStatusCode::kError);
  EXPECT_THAT(tiermesh::tracing::EncodeOtlpJson(spans, {}), Not(HasSubstr("wrong-key")));
}

TEST_P(UpstreamClientTest, WithoutATracerTheCallersTraceparentStillGoesOn) {
  fake_->SetModel("fake-model", Reply("ok"));
  HeaderRecordingTransport recording(transport_.get());
  UpstreamClient client(&recording, [] { return absl::Now(); });
  UpstreamCall call = Call();
  absl::StatusOr<tiermesh::tracing::SpanContext> parent = tiermesh::tracing::ParseTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_THAT(parent.status(), IsOk());
  call.parent = *parent;
  ASSERT_THAT(client.Generate(call, Hello()), IsOk());
  ASSERT_EQ(recording.sent().size(), 1u);
  EXPECT_EQ(recording.sent()[0].at("traceparent"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

TEST_P(UpstreamClientTest, DeadlineAndUnreachable) {
  FakeModelScript slow;
  slow.latency = absl::Seconds(3);
  fake_->SetModel("fake-model", slow);
  UpstreamCall call = Call();
  call.deadline = absl::Now() + absl::Milliseconds(200);
  EXPECT_THAT(client_->Generate(call, Hello()),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr(GetParam().name)));

  ProviderConfig config = adapter_->config();
  const int port = fake_->http().port();
  fake_.reset();  // nothing listens there any more
  config.base_url = absl::StrCat("http://127.0.0.1:", port);
  adapter_ = MakeProviderAdapter(config);
  absl::StatusOr<tiermesh::v1::GenerateResponse> r = client_->Generate(Call(), Hello());
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr(GetParam().name)));
}

INSTANTIATE_TEST_SUITE_P(
    Apis, UpstreamClientTest,
    ::testing::Values(Api{"openai", ProviderKind::kOpenAiCompatible, FakeApi::kOpenAi},
                      Api{"anthropic", ProviderKind::kAnthropic, FakeApi::kAnthropic},
                      Api{"gemini", ProviderKind::kGemini, FakeApi::kGemini}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace tiermesh::cloud
