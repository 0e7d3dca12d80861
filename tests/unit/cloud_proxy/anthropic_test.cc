#include "services/cloud_proxy/providers/anthropic.h"

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

class AnthropicTest : public ::testing::Test {
 protected:
  AnthropicTest()
      : adapter_(MakeProviderAdapter(Provider(ProviderKind::kAnthropic, "anthropic"))) {}
  std::unique_ptr<ProviderAdapter> adapter_;
  const ParseContext ctx_{/*estimated_prompt_tokens=*/30, absl::FromUnixSeconds(1'700'000'000)};
};

TEST_F(AnthropicTest, BuildsTheToolConversationExactly) {
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec,
                       adapter_->BuildRequest(test::ToolConversation(), Model("claude-x"), false));
  EXPECT_EQ(spec.path, "/v1/messages");
  EXPECT_THAT(spec.headers, ::testing::Contains(Pair("anthropic-version", "2023-06-01")));
  const Json want = Json::parse(R"({
    "model": "claude-x",
    "max_tokens": 4096,
    "system": "Be brief.",
    "messages": [
      {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]},
      {"role": "assistant", "content": [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Oslo"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "{\"temp_c\":21}"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "cold"},
        {"type": "text", "text": "Thanks"}]}
    ],
    "tools": [{"name": "get_weather", "description": "Current weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                "required": ["city"]}}],
    "tool_choice": {"type": "auto"}
  })");
  EXPECT_EQ(Body(spec), want) << Body(spec).dump(2);
}

TEST_F(AnthropicTest, ParamsAndChoices) {
  tiermesh::v1::GenerateRequest req;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_SYSTEM, "one");
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "hi");
  *req.add_messages() = Msg(tiermesh::v1::ROLE_SYSTEM, "two");
  req.add_tools()->set_name("f");
  req.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_REQUIRED);
  auto* p = req.mutable_params();
  p->set_max_tokens(50);
  p->set_temperature(0.3f);
  p->set_top_p(0.8f);
  p->set_top_k(20);
  p->add_stop("\n\n");
  p->set_seed(7);  // not supported: dropped
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec, adapter_->BuildRequest(req, Model(), true));
  const Json body = Body(spec);
  EXPECT_EQ(body["system"], "one\n\ntwo");
  EXPECT_EQ(body["max_tokens"], 50);
  EXPECT_EQ(body["temperature"], 0.3);
  EXPECT_EQ(body["top_p"], 0.8);
  EXPECT_EQ(body["top_k"], 20);
  EXPECT_EQ(body["stop_sequences"], Json::parse(R"(["\n\n"])"));
  EXPECT_EQ(body["tool_choice"], Json::parse(R"({"type": "any"})"));
  EXPECT_EQ(body["tools"][0]["input_schema"], Json::parse(R"({"type":"object","properties":{}})"));
  EXPECT_EQ(body["stream"], true);
  EXPECT_FALSE(body.contains("seed"));

  req.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_FUNCTION);
  req.mutable_tool_choice()->set_function_name("f");
  ASSERT_OK_AND_ASSIGN(spec, adapter_->BuildRequest(req, Model(), false));
  EXPECT_EQ(Body(spec)["tool_choice"], Json::parse(R"({"type": "tool", "name": "f"})"));
  req.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_NONE);
  req.mutable_tool_choice()->clear_function_name();
  ASSERT_OK_AND_ASSIGN(spec, adapter_->BuildRequest(req, Model(), false));
  EXPECT_EQ(Body(spec)["tool_choice"], Json::parse(R"({"type": "none"})"));

  ModelConfig model = Model();
  model.max_output_tokens = 1234;
  req.mutable_params()->clear_max_tokens();
  ASSERT_OK_AND_ASSIGN(spec, adapter_->BuildRequest(req, model, false));
  EXPECT_EQ(Body(spec)["max_tokens"], 1234);
}

TEST_F(AnthropicTest, RejectsWhatTheApiCannotExpress) {
  struct Case {
    std::function<void(tiermesh::v1::GenerateRequest&)> setup;
    std::string part;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.mutable_params()->set_json_mode(true); }, "JSON mode"},
      {[](auto& r) { r.mutable_params()->set_temperature(1.5f); }, "0..1"},
      {[](auto& r) { r.mutable_params()->set_presence_penalty(0.5f); }, "penalties"},
      {[](auto& r) { *r.add_messages() = Msg(tiermesh::v1::ROLE_USER, ""); }, "empty message"},
      {[](auto& r) { r.mutable_messages(0)->set_role(tiermesh::v1::ROLE_SYSTEM); },
       "non-system message"},
      {[](auto& r) {
         auto* a = r.add_messages();
         a->set_role(tiermesh::v1::ROLE_ASSISTANT);
         auto* c = a->add_tool_calls();
         c->set_id("c");
         c->set_name("f");
         c->set_arguments_json("[1]");
       },
       "JSON object"},
  };
  for (const Case& c : cases) {
    tiermesh::v1::GenerateRequest req;
    *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "hi");
    c.setup(req);
    EXPECT_THAT(adapter_->BuildRequest(req, Model(), false),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.part)));
  }
  // A zero penalty is the same as none.
  tiermesh::v1::GenerateRequest req;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "hi");
  req.mutable_params()->set_frequency_penalty(0.0f);
  EXPECT_THAT(adapter_->BuildRequest(req, Model(), false), IsOk());
}

TEST_F(AnthropicTest, AuthHeaderIsXApiKey) {
  EXPECT_EQ(adapter_->AuthHeader("k"), std::make_pair(std::string("x-api-key"), std::string("k")));
}

TEST_F(AnthropicTest, ParsesAUnaryAnswerWithToolUseAndCacheUsage) {
  HttpResponse resp{200, {}, R"({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x-2025",
    "content": [{"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                 "input": {"city": "Oslo"}}],
    "stop_reason": "tool_use", "stop_sequence": null,
    "usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
              "cache_creation_input_tokens": 5, "output_tokens": 20}})"};
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, adapter_->ParseResponse(resp, ctx_));
  EXPECT_EQ(r.message().content(), "Let me check.");
  ASSERT_EQ(r.message().tool_calls_size(), 1);
  EXPECT_EQ(r.message().tool_calls(0).id(), "toolu_1");
  EXPECT_EQ(r.message().tool_calls(0).name(), "get_weather");
  EXPECT_EQ(r.message().tool_calls(0).arguments_json(), R"({"city":"Oslo"})");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(r.model(), "claude-x-2025");
  EXPECT_EQ(r.usage().prompt_tokens(), 115);
  EXPECT_EQ(r.usage().cached_prompt_tokens(), 100);
  EXPECT_EQ(r.usage().completion_tokens(), 20);
  EXPECT_FALSE(r.usage().estimated());
}

TEST_F(AnthropicTest, UnaryErrors) {
  absl::StatusOr<tiermesh::v1::GenerateResponse> r =
      adapter_->ParseResponse({400, {}, R"({"type":"error","error":{"type":"invalid_request_error",
                   "message":"prompt is too long: 250000 tokens > 200000 maximum"}})"},
                              ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("too long")));
  EXPECT_EQ(ErrorReason(r.status()), "context_length_exceeded");
  r = adapter_->ParseResponse({529, {}, R"({"type":"error","error":{"type":"overloaded_error",
                                           "message":"Overloaded"}})"},
                              ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Overloaded")));
  r = adapter_->ParseResponse({200, {}, R"({"content": [], "stop_reason": "refusal"})"}, ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("refusal")));
  EXPECT_EQ(ErrorReason(r.status()), "content_policy");
  r = adapter_->ParseResponse({200, {}, R"({"content": "text"})"}, ctx_);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no content list")));
}

// The event sequence from Anthropic's streaming documentation, with a tool call.
std::vector<tiermesh::http::SseEvent> DocStream() {
  return {
      Ev(R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}})",
         "message_start"),
      Ev(R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
         "content_block_start"),
      Ev(R"({"type": "ping"})", "ping"),
      Ev(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})",
         "content_block_delta"),
      Ev(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}})",
         "content_block_delta"),
      Ev(R"({"type":"content_block_stop","index":0})", "content_block_stop"),
      Ev(R"({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}})",
         "content_block_start"),
      Ev(R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}})",
         "content_block_delta"),
      Ev(R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Os"}})",
         "content_block_delta"),
      Ev(R"({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"lo\"}"}})",
         "content_block_delta"),
      Ev(R"({"type":"content_block_stop","index":1})", "content_block_stop"),
      Ev(R"({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":32}})",
         "message_delta"),
      Ev(R"({"type":"message_stop"})", "message_stop"),
  };
}

TEST_F(AnthropicTest, StreamsTextAndToolUse) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(*parser, DocStream());
  ASSERT_THAT(got.status, IsOk());
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.text, "Hello!");
  ASSERT_EQ(got.calls.size(), 1u);
  EXPECT_EQ(got.calls[0].id, "toolu_1");  // index 0 among tool calls, block index 1
  EXPECT_EQ(got.calls[0].name, "get_weather");
  EXPECT_EQ(got.calls[0].arguments, R"({"city": "Oslo"})");
  EXPECT_EQ(parser->finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(parser->model(), "claude-x");
  EXPECT_EQ(parser->usage().prompt_tokens(), 30);
  EXPECT_EQ(parser->usage().cached_prompt_tokens(), 5);
  EXPECT_EQ(parser->usage().completion_tokens(), 32);
  EXPECT_FALSE(parser->usage().estimated());
}

TEST_F(AnthropicTest, CutAfterTextKeepsAConservativeUsage) {
  std::vector<tiermesh::http::SseEvent> events = DocStream();
  events.resize(5);  // up to the second text delta; no message_delta / message_stop
  events.push_back(Ev(
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"0123456789012345678901234567890123456789"}})",
      "content_block_delta"));
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(*parser, events);
  EXPECT_THAT(got.status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("anthropic")));
  EXPECT_EQ(ErrorReason(got.status), "stream_cut");
  // Provider said 1 output token so far; 46 bytes were received: the estimate wins.
  EXPECT_EQ(parser->usage().prompt_tokens(), 30);
  EXPECT_EQ(parser->usage().completion_tokens(), 12);
  EXPECT_TRUE(parser->usage().estimated());
}

TEST_F(AnthropicTest, StreamErrors) {
  struct Case {
    std::vector<tiermesh::http::SseEvent> events;
    absl::StatusCode code;
    std::string part;
  };
  const std::vector<Case> cases = {
      {{DocStream()[0], DocStream()[1],
        Ev(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
           "error")},
       absl::StatusCode::kUnavailable,
       "Overloaded"},
      {{Ev(R"({"type":"error","error":{"type":"rate_limit_error","message":"slow"}})", "error")},
       absl::StatusCode::kResourceExhausted,
       "slow"},
      {{Ev("{oops", "message_start")}, absl::StatusCode::kUnavailable, "malformed"},
      {{Ev(R"({"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}})")},
       absl::StatusCode::kUnavailable,
       "unknown block"},
      {{Ev(R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f"}})"),
        Ev(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}})")},
       absl::StatusCode::kUnavailable,
       "non-text block"},
      {{Ev(R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"),
        Ev(R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})")},
       absl::StatusCode::kUnavailable,
       "repeated"},
      {{Ev(R"({"type":"message_start"})")}, absl::StatusCode::kUnavailable, "without message"},
      {{Ev(R"({"type":"message_delta","delta":{"stop_reason":"refusal"}})"),
        Ev(R"({"type":"message_stop"})")},
       absl::StatusCode::kFailedPrecondition,
       "content policy"},
  };
  for (const Case& c : cases) {
    auto parser = adapter_->NewStreamParser(ctx_);
    EXPECT_THAT(RunStream(*parser, c.events).status, StatusIs(c.code, HasSubstr(c.part)));
  }
}

TEST_F(AnthropicTest, UnknownEventsAndDeltasAreSkipped) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser,
      {Ev(R"({"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}})"),
       Ev(R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}})"),
       Ev(R"({"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"x"}})"),
       Ev(R"({"type":"brand_new_event"})", "brand_new_event"),
       Ev(R"({"type":"content_block_start","index":1,"content_block":{"type":"text","text":"ok"}})"),
       Ev(R"({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}})"),
       Ev(R"({"type":"message_stop"})")});
  ASSERT_THAT(got.status, IsOk());
  EXPECT_EQ(got.text, "ok");
  EXPECT_EQ(parser->finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  // No input usage came: the prompt is estimated.
  EXPECT_TRUE(parser->usage().estimated());
  EXPECT_EQ(parser->usage().completion_tokens(), 3);
}

TEST(AnthropicFinishReason, Table) {
  EXPECT_EQ(AnthropicFinishReason("end_turn"), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(AnthropicFinishReason("stop_sequence"), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(AnthropicFinishReason("pause_turn"), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(AnthropicFinishReason("max_tokens"), tiermesh::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(AnthropicFinishReason("model_context_window_exceeded"),
            tiermesh::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(AnthropicFinishReason("tool_use"), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(AnthropicFinishReason("refusal"), tiermesh::v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(AnthropicFinishReason("?"), tiermesh::v1::FINISH_REASON_UNSPECIFIED);
}

}  // namespace
}  // namespace tiermesh::cloud
