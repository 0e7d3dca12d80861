#include "services/cloud_proxy/providers/gemini.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/cloud_proxy/errors.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/cloud_proxy/provider_test_util.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using ::tiermesh::cloud::test::Body;
using ::tiermesh::cloud::test::Ev;
using ::tiermesh::cloud::test::Model;
using ::tiermesh::cloud::test::Msg;
using ::tiermesh::cloud::test::Provider;
using ::tiermesh::cloud::test::RunStream;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;
using Json = nlohmann::json;

class GeminiTest : public ::testing::Test {
 protected:
  GeminiTest() : adapter_(MakeProviderAdapter(Provider(ProviderKind::kGemini, "gemini"))) {}
  std::unique_ptr<ProviderAdapter> adapter_;
  const ParseContext ctx_{/*estimated_prompt_tokens=*/20, absl::FromUnixSeconds(1'700'000'000)};
};

TEST_F(GeminiTest, BuildsTheToolConversationExactly) {
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec,
                       adapter_->BuildRequest(test::ToolConversation(), Model("gemini-x"), false));
  EXPECT_EQ(spec.path, "/v1beta/models/gemini-x:generateContent");
  const Json want = Json::parse(R"({
    "contents": [
      {"role": "user", "parts": [{"text": "Weather in Paris and Oslo?"}]},
      {"role": "model", "parts": [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}]},
      {"role": "user", "parts": [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
        {"functionResponse": {"name": "get_weather", "response": {"content": "cold"}}},
        {"text": "Thanks"}]}
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "tools": [{"functionDeclarations": [{
      "name": "get_weather", "description": "Current weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}}
  })");
  EXPECT_EQ(Body(spec), want) << Body(spec).dump(2);
}

TEST_F(GeminiTest, StreamingPathParamsAndKeyHeader) {
  tiermesh::v1::GenerateRequest req;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "hi");
  req.add_tools()->set_name("f");
  req.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_FUNCTION);
  req.mutable_tool_choice()->set_function_name("f");
  auto* p = req.mutable_params();
  p->set_max_tokens(64);
  p->set_temperature(1.5f);
  p->set_top_p(0.95f);
  p->set_top_k(32);
  p->add_stop("STOP");
  p->set_seed(3);
  p->set_presence_penalty(0.1f);
  p->set_frequency_penalty(0.2f);
  p->set_json_mode(true);
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec, adapter_->BuildRequest(req, Model("gemini-x"), true));
  EXPECT_EQ(spec.path, "/v1beta/models/gemini-x:streamGenerateContent?alt=sse");
  EXPECT_THAT(spec.headers, ::testing::Contains(Pair("Accept", "text/event-stream")));
  const Json body = Body(spec);
  EXPECT_EQ(body["generationConfig"], Json::parse(R"({
    "maxOutputTokens": 64, "temperature": 1.5, "topP": 0.95, "topK": 32,
    "stopSequences": ["STOP"], "seed": 3, "presencePenalty": 0.1, "frequencyPenalty": 0.2,
    "responseMimeType": "application/json"})"));
  EXPECT_EQ(body["toolConfig"], Json::parse(R"({"functionCallingConfig":
    {"mode": "ANY", "allowedFunctionNames": ["f"]}})"));
  EXPECT_EQ(body["tools"][0]["functionDeclarations"][0], Json::parse(R"({"name": "f"})"));
  EXPECT_EQ(adapter_->AuthHeader("AIzaKEY"),
            std::make_pair(std::string("x-goog-api-key"), std::string("AIzaKEY")));
  EXPECT_EQ(spec.path.find("key="), std::string::npos);
}

TEST_F(GeminiTest, RejectsEmptyMessages) {
  tiermesh::v1::GenerateRequest req;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "");
  EXPECT_THAT(adapter_->BuildRequest(req, Model(), false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty message")));
}

TEST_F(GeminiTest, ParsesAUnaryAnswer) {
  HttpResponse resp{200, {}, R"({
    "candidates": [{"content": {"role": "model", "parts": [
        {"text": "thinking...", "thought": true},
        {"text": "1+1 equals 2."}]},
      "finishReason": "STOP", "index": 0}],
    "usageMetadata": {"promptTokenCount": 15, "candidatesTokenCount": 6,
                      "thoughtsTokenCount": 4, "cachedContentTokenCount": 10,
                      "totalTokenCount": 25},
    "modelVersion": "gemini-x-001"})"};
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, adapter_->ParseResponse(resp, ctx_));
  EXPECT_EQ(r.message().content(), "1+1 equals 2.");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.model(), "gemini-x-001");
  EXPECT_EQ(r.usage().prompt_tokens(), 15);
  EXPECT_EQ(r.usage().completion_tokens(), 10);  // candidates + thoughts
  EXPECT_EQ(r.usage().cached_prompt_tokens(), 10);
  EXPECT_FALSE(r.usage().estimated());
}

TEST_F(GeminiTest, ParsesFunctionCalls) {
  HttpResponse resp{200, {}, R"({"candidates": [{"content": {"role": "model", "parts": [
      {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
      {"functionCall": {"id": "given-id", "name": "get_time"}}]},
    "finishReason": "STOP"}]})"};
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, adapter_->ParseResponse(resp, ctx_));
  ASSERT_EQ(r.message().tool_calls_size(), 2);
  EXPECT_EQ(r.message().tool_calls(0).id(), "call_0");
  EXPECT_EQ(r.message().tool_calls(0).arguments_json(), R"({"city":"Oslo"})");
  EXPECT_EQ(r.message().tool_calls(1).id(), "given-id");
  EXPECT_EQ(r.message().tool_calls(1).arguments_json(), "{}");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_TRUE(r.usage().estimated());
}

TEST_F(GeminiTest, SafetyAndBlockedPrompts) {
  absl::StatusOr<tiermesh::v1::GenerateResponse> r =
      adapter_->ParseResponse({200, {}, R"({"promptFeedback": {"blockReason": "SAFETY"},
                   "usageMetadata": {"promptTokenCount": 8}})"},
                              ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SAFETY")));
  EXPECT_EQ(ErrorReason(r.status()), "content_policy");
  r = adapter_->ParseResponse({200, {}, R"({"candidates": [{"finishReason": "SAFETY"}]})"}, ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("SAFETY")));
  // Partial text, then SAFETY: the answer is returned, marked filtered.
  r = adapter_->ParseResponse(
      {200, {}, R"({"candidates": [{"content": {"parts": [{"text": "Once"}]},
                                    "finishReason": "SAFETY"}]})"},
      ctx_);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->finish_reason(), tiermesh::v1::FINISH_REASON_CONTENT_FILTER);
  r = adapter_->ParseResponse(
      {200,
       {},
       R"({"candidates": [{"content": {"parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL"}]})"},
      ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("MALFORMED_FUNCTION_CALL")));
  r = adapter_->ParseResponse({429, {}, R"({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
      "message": "quota", "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
      "retryDelay": "20s"}]}})"},
                              ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("quota")));
  EXPECT_EQ(GetRetryAfter(r.status()), absl::Seconds(20));
}

TEST_F(GeminiTest, StreamCompletesWhenTheBodyEndsAfterAFinishReason) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser,
      {Ev(R"({"candidates":[{"content":{"role":"model","parts":[{"text":"The "}]}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1},"modelVersion":"gemini-x"})"),
       Ev(R"({"candidates":[{"content":{"role":"model","parts":[{"text":"answer"}]}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2}})"),
       Ev(R"({"candidates":[{"content":{"role":"model","parts":[{"text":"."}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":3,"totalTokenCount":10}})")});
  ASSERT_THAT(got.status, IsOk());
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.text, "The answer.");
  EXPECT_EQ(parser->finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(parser->model(), "gemini-x");
  EXPECT_EQ(parser->usage().prompt_tokens(), 7);
  EXPECT_EQ(parser->usage().completion_tokens(), 3);
  EXPECT_FALSE(parser->usage().estimated());
}

TEST_F(GeminiTest, StreamFunctionCalls) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser,
      {Ev(R"({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}}}]}}]})"),
       Ev(R"({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_time","args":{}}}]},"finishReason":"STOP"}]})")});
  ASSERT_THAT(got.status, IsOk());
  ASSERT_EQ(got.calls.size(), 2u);
  EXPECT_EQ(got.calls[0].id, "call_0");
  EXPECT_EQ(got.calls[0].name, "get_weather");
  EXPECT_EQ(got.calls[0].arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(got.calls[1].id, "call_1");
  EXPECT_EQ(parser->finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
}

TEST_F(GeminiTest, StreamCutsAndErrors) {
  struct Case {
    std::vector<tiermesh::http::SseEvent> events;
    absl::StatusCode code;
    std::string part;
    std::string reason;
  };
  const std::vector<Case> cases = {
      // Body ends without a finishReason: a cut.
      {{Ev(R"({"candidates":[{"content":{"parts":[{"text":"half"}]}}]})")},
       absl::StatusCode::kUnavailable,
       "before its end",
       "stream_cut"},
      {{Ev(R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})")},
       absl::StatusCode::kUnavailable,
       "overloaded",
       "UNAVAILABLE"},
      {{Ev("not-json")}, absl::StatusCode::kUnavailable, "malformed", "malformed_response"},
      {{Ev(R"({"candidates":[{"content":{"parts":{"text":"x"}}}]})")},
       absl::StatusCode::kUnavailable,
       "parts is not a list",
       "malformed_response"},
      {{Ev(R"({"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}})")},
       absl::StatusCode::kFailedPrecondition,
       "PROHIBITED_CONTENT",
       "content_policy"},
      {{Ev(R"({"candidates":[{"finishReason":"SAFETY"}]})")},
       absl::StatusCode::kFailedPrecondition,
       "SAFETY",
       "content_policy"},
      {{Ev(R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"OTHER"}]})")},
       absl::StatusCode::kUnavailable,
       "OTHER",
       "upstream_finish_error"},
  };
  for (const Case& c : cases) {
    auto parser = adapter_->NewStreamParser(ctx_);
    test::Assembled got = RunStream(*parser, c.events);
    EXPECT_THAT(got.status, StatusIs(c.code, HasSubstr(c.part)));
    EXPECT_EQ(ErrorReason(got.status), c.reason);
  }
}

TEST_F(GeminiTest, CutStreamReportsRunningUsage) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser,
      {Ev(R"({"candidates":[{"content":{"parts":[{"text":"ab"}]}}],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":5}})")});
  EXPECT_FALSE(got.status.ok());
  EXPECT_EQ(parser->usage().prompt_tokens(), 7);
  EXPECT_EQ(parser->usage().completion_tokens(), 5);
  EXPECT_FALSE(parser->usage().estimated());
}

TEST(GeminiFinishReason, Table) {
  EXPECT_EQ(GeminiFinishReason("STOP", false), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(GeminiFinishReason("STOP", true), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(GeminiFinishReason("MAX_TOKENS", false), tiermesh::v1::FINISH_REASON_LENGTH);
  for (const char* r : {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII"}) {
    EXPECT_EQ(GeminiFinishReason(r, false), tiermesh::v1::FINISH_REASON_CONTENT_FILTER) << r;
  }
  for (const char* r : {"OTHER", "LANGUAGE", "MALFORMED_FUNCTION_CALL"}) {
    EXPECT_EQ(GeminiFinishReason(r, false), tiermesh::v1::FINISH_REASON_ERROR) << r;
  }
  EXPECT_EQ(GeminiFinishReason("FINISH_REASON_UNSPECIFIED", false),
            tiermesh::v1::FINISH_REASON_UNSPECIFIED);
}

}  // namespace
}  // namespace tiermesh::cloud
