#include "services/cloud_proxy/providers/openai.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
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

class OpenAiTest : public ::testing::Test {
 protected:
  OpenAiTest() {
    ProviderConfig config = Provider(ProviderKind::kOpenAiCompatible, "openrouter");
    config.headers = {{"HTTP-Referer", "https://example.org"}};
    adapter_ = MakeProviderAdapter(config);
  }
  std::unique_ptr<ProviderAdapter> adapter_;
  const ParseContext ctx_{/*estimated_prompt_tokens=*/40, absl::FromUnixSeconds(1'700'000'000)};
};

TEST_F(OpenAiTest, BuildsTheToolConversationExactly) {
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec,
                       adapter_->BuildRequest(test::ToolConversation(), Model("gpt-x"), false));
  EXPECT_EQ(spec.path, "/chat/completions");
  EXPECT_THAT(spec.headers, ::testing::ElementsAre(Pair("Content-Type", "application/json"),
                                                   Pair("Accept", "application/json"),
                                                   Pair("HTTP-Referer", "https://example.org")));
  const Json want = Json::parse(R"({
    "model": "gpt-x",
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Weather in Paris and Oslo?"},
      {"role": "assistant", "content": "Checking.", "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_2", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\":21}"},
      {"role": "tool", "tool_call_id": "call_2", "content": "cold"},
      {"role": "user", "content": "Thanks"}
    ],
    "tools": [{"type": "function", "function": {
      "name": "get_weather", "description": "Current weather",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]}}}],
    "tool_choice": "auto"
  })");
  EXPECT_EQ(Body(spec), want) << Body(spec).dump(2);
}

TEST_F(OpenAiTest, StreamingAsksForUsageAndSse) {
  tiermesh::v1::GenerateRequest req;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "hi");
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec, adapter_->BuildRequest(req, Model(), true));
  EXPECT_EQ(Body(spec)["stream"], true);
  EXPECT_EQ(Body(spec)["stream_options"], Json::parse(R"({"include_usage": true})"));
  EXPECT_THAT(spec.headers, ::testing::Contains(Pair("Accept", "text/event-stream")));
  for (const auto& [name, value] : spec.headers) {
    EXPECT_NE(absl::AsciiStrToLower(name), "authorization");
  }

  ProviderConfig no_usage = Provider(ProviderKind::kOpenAiCompatible);
  no_usage.stream_include_usage = false;
  ASSERT_OK_AND_ASSIGN(spec, MakeProviderAdapter(no_usage)->BuildRequest(req, Model(), true));
  EXPECT_FALSE(Body(spec).contains("stream_options"));
}

TEST_F(OpenAiTest, AuthHeaderIsBearer) {
  EXPECT_EQ(adapter_->AuthHeader("k-1"),
            std::make_pair(std::string("Authorization"), std::string("Bearer k-1")));
}

struct ParamCase {
  std::string name;
  std::function<void(tiermesh::v1::GenerateRequest&, ModelConfig&)> setup;
  std::string want_fragment;  // JSON object whose keys must match in the body
  std::vector<std::string> absent;
};

class OpenAiParamsTest : public ::testing::TestWithParam<ParamCase> {};

TEST_P(OpenAiParamsTest, MapsParams) {
  tiermesh::v1::GenerateRequest req;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "hi");
  ModelConfig model = Model();
  GetParam().setup(req, model);
  auto adapter = MakeProviderAdapter(Provider(ProviderKind::kOpenAiCompatible));
  ASSERT_OK_AND_ASSIGN(HttpRequestSpec spec, adapter->BuildRequest(req, model, false));
  const Json body = Body(spec);
  const Json want = Json::parse(GetParam().want_fragment);
  for (const auto& [key, value] : want.items()) {
    ASSERT_TRUE(body.contains(key)) << key << " missing in " << body.dump();
    EXPECT_EQ(body.at(key), value) << key << " in " << body.dump();
  }
  for (const std::string& key : GetParam().absent) EXPECT_FALSE(body.contains(key)) << key;
}

INSTANTIATE_TEST_SUITE_P(
    Table, OpenAiParamsTest,
    ::testing::Values(
        ParamCase{"all_params",
                  [](auto& r, auto&) {
                    auto* p = r.mutable_params();
                    p->set_max_tokens(100);
                    p->set_temperature(0.7f);
                    p->set_top_p(0.9f);
                    p->add_stop("END");
                    p->set_seed(42);
                    p->set_presence_penalty(0.5f);
                    p->set_frequency_penalty(-0.25f);
                    p->set_json_mode(true);
                  },
                  R"({"max_tokens": 100, "temperature": 0.7, "top_p": 0.9, "stop": ["END"],
                      "seed": 42, "presence_penalty": 0.5, "frequency_penalty": -0.25,
                      "response_format": {"type": "json_object"}})",
                  {"top_k", "stream", "tools", "tool_choice"}},
        ParamCase{"max_completion_tokens_field",
                  [](auto& r, auto& m) {
                    r.mutable_params()->set_max_tokens(7);
                    m.max_tokens_field = "max_completion_tokens";
                  },
                  R"({"max_completion_tokens": 7})",
                  {"max_tokens"}},
        ParamCase{"top_k_dropped_unless_supported",
                  [](auto& r, auto&) { r.mutable_params()->set_top_k(40); },
                  "{}",
                  {"top_k"}},
        ParamCase{"top_k_forwarded_when_supported",
                  [](auto& r, auto& m) {
                    r.mutable_params()->set_top_k(40);
                    m.supports_top_k = true;
                  },
                  R"({"top_k": 40})",
                  {}},
        ParamCase{"tool_choice_required",
                  [](auto& r, auto&) {
                    r.add_tools()->set_name("f");
                    r.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_REQUIRED);
                  },
                  R"({"tool_choice": "required",
                      "tools": [{"type": "function", "function": {"name": "f",
                        "parameters": {"type": "object", "properties": {}}}}]})",
                  {}},
        ParamCase{"tool_choice_none",
                  [](auto& r, auto&) {
                    r.add_tools()->set_name("f");
                    r.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_NONE);
                  },
                  R"({"tool_choice": "none"})",
                  {}},
        ParamCase{"tool_choice_function",
                  [](auto& r, auto&) {
                    r.add_tools()->set_name("f");
                    r.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_FUNCTION);
                    r.mutable_tool_choice()->set_function_name("f");
                  },
                  R"({"tool_choice": {"type": "function", "function": {"name": "f"}}})",
                  {}},
        ParamCase{"assistant_tool_call_only_has_null_content",
                  [](auto& r, auto&) {
                    auto* a = r.add_messages();
                    a->set_role(tiermesh::v1::ROLE_ASSISTANT);
                    auto* c = a->add_tool_calls();
                    c->set_id("c");
                    c->set_name("f");
                  },
                  R"({"messages": [{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": null, "tool_calls": [{"id": "c",
                       "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]})",
                  {}},
        ParamCase{"name_forwarded",
                  [](auto& r, auto&) { r.mutable_messages(0)->set_name("alice"); },
                  R"({"messages": [{"role": "user", "content": "hi", "name": "alice"}]})",
                  {}}),
    [](const auto& param_info) { return param_info.param.name; });

TEST_F(OpenAiTest, RejectsToolsOnAModelWithoutThem) {
  tiermesh::v1::GenerateRequest req = test::ToolConversation();
  ModelConfig model = Model();
  model.supports_tools = false;
  EXPECT_THAT(adapter_->BuildRequest(req, model, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not support tools")));
}

TEST_F(OpenAiTest, ParsesAUnaryAnswer) {
  HttpResponse resp{200, {}, R"({
    "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-x-2024",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15,
              "prompt_tokens_details": {"cached_tokens": 8}}})"};
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, adapter_->ParseResponse(resp, ctx_));
  EXPECT_EQ(r.message().role(), tiermesh::v1::ROLE_ASSISTANT);
  EXPECT_EQ(r.message().content(), "Hello!");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.model(), "gpt-x-2024");
  EXPECT_EQ(r.usage().prompt_tokens(), 12);
  EXPECT_EQ(r.usage().completion_tokens(), 3);
  EXPECT_EQ(r.usage().cached_prompt_tokens(), 8);
  EXPECT_EQ(r.usage().total_tokens(), 15);
  EXPECT_FALSE(r.usage().estimated());
}

TEST_F(OpenAiTest, ParsesToolCallsAndEstimatesMissingUsage) {
  HttpResponse resp{200, {}, R"({"model": "m", "choices": [{"index": 0, "message": {
      "role": "assistant", "content": null, "tool_calls": [
        {"id": "call_9", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
      "finish_reason": "tool_calls"}]})"};
  ASSERT_OK_AND_ASSIGN(tiermesh::v1::GenerateResponse r, adapter_->ParseResponse(resp, ctx_));
  ASSERT_EQ(r.message().tool_calls_size(), 1);
  EXPECT_EQ(r.message().tool_calls(0).id(), "call_9");
  EXPECT_EQ(r.message().tool_calls(0).name(), "get_weather");
  EXPECT_EQ(r.message().tool_calls(0).arguments_json(), R"({"city":"Oslo"})");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_TRUE(r.usage().estimated());
  EXPECT_EQ(r.usage().prompt_tokens(), 40);
  EXPECT_EQ(r.usage().completion_tokens(), (11 + 15 + 3) / 4);  // name + args bytes / 4, up
}

TEST_F(OpenAiTest, UnaryErrorsAndMalformedAnswers) {
  EXPECT_THAT(adapter_->ParseResponse({429,
                                       {{"retry-after", "4"}},
                                       R"({"error":{"message":"slow","type":"requests",
                                           "code":"rate_limit_exceeded"}})"},
                                      ctx_),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("slow")));
  EXPECT_THAT(adapter_->ParseResponse({200, {}, "not json"}, ctx_),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("malformed")));
  EXPECT_THAT(adapter_->ParseResponse({200, {}, R"({"choices": []})"}, ctx_),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no choices")));
  EXPECT_THAT(adapter_->ParseResponse({200, {}, R"({"choices": [{"message": 3}]})"}, ctx_),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no message")));
  EXPECT_THAT(adapter_->ParseResponse({200, {}, R"({"error": {"message": "upstream died",
                                                    "code": 502}})"},
                                      ctx_),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("upstream died")));
  absl::StatusOr<tiermesh::v1::GenerateResponse> filtered = adapter_->ParseResponse(
      {200, {}, R"({"choices": [{"message": {"role": "assistant", "content": ""},
                    "finish_reason": "content_filter"}]})"},
      ctx_);
  EXPECT_THAT(filtered, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("content")));
  EXPECT_EQ(ErrorReason(filtered.status()), "content_policy");
}

TEST_F(OpenAiTest, StreamsTextThenUsageThenDone) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser,
      {Ev(R"({"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null})"),
       Ev(R"({"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null})"),
       Ev(R"({"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}],"usage":null})"),
       Ev(R"({"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})"),
       Ev(R"({"id":"c","model":"gpt-x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})"),
       Ev("[DONE]")});
  EXPECT_THAT(got.status, IsOk());
  EXPECT_TRUE(got.complete);
  EXPECT_EQ(got.text, "Hello");
  EXPECT_EQ(got.deltas, 2);
  EXPECT_EQ(parser->finish_reason(), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(parser->model(), "gpt-x");
  EXPECT_EQ(parser->usage().prompt_tokens(), 9);
  EXPECT_EQ(parser->usage().completion_tokens(), 2);
  EXPECT_FALSE(parser->usage().estimated());
}

TEST_F(OpenAiTest, StreamsParallelToolCallDeltas) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser,
      {Ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})"),
       Ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})"),
       Ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]}}]})"),
       Ev(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]}}]})"),
       Ev(R"({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"), Ev("[DONE]")});
  ASSERT_THAT(got.status, IsOk());
  ASSERT_EQ(got.calls.size(), 2u);
  EXPECT_EQ(got.calls[0].id, "call_a");
  EXPECT_EQ(got.calls[0].name, "get_weather");
  EXPECT_EQ(got.calls[0].arguments, R"({"city":"Oslo"})");
  EXPECT_EQ(got.calls[1].id, "call_b");
  EXPECT_EQ(got.calls[1].arguments, "{}");
  EXPECT_EQ(parser->finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  // No usage chunk: estimated from what was received.
  EXPECT_TRUE(parser->usage().estimated());
  EXPECT_EQ(parser->usage().prompt_tokens(), 40);
}

TEST_F(OpenAiTest, CutStreamIsAnErrorWithPartialUsage) {
  auto parser = adapter_->NewStreamParser(ctx_);
  test::Assembled got = RunStream(
      *parser, {Ev(R"({"choices":[{"index":0,"delta":{"content":"partial answer!!"}}]})")});
  EXPECT_THAT(got.status, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("before its end")));
  EXPECT_EQ(ErrorReason(got.status), "stream_cut");
  EXPECT_EQ(got.text, "partial answer!!");
  EXPECT_FALSE(parser->complete());
  EXPECT_TRUE(parser->usage().estimated());
  EXPECT_EQ(parser->usage().completion_tokens(), 4);  // 16 bytes
  // Sticky.
  EXPECT_FALSE(parser->OnEvent(Ev("[DONE]")).ok());
}

TEST_F(OpenAiTest, StreamErrorsAreMapped) {
  struct Case {
    std::vector<tiermesh::http::SseEvent> events;
    absl::StatusCode code;
    std::string part;
  };
  const std::vector<Case> cases = {
      {{Ev("{not json")}, absl::StatusCode::kUnavailable, "malformed"},
      {{Ev("[1,2]")}, absl::StatusCode::kUnavailable, "not a JSON object"},
      {{Ev(R"({"choices": 5})")}, absl::StatusCode::kUnavailable, "choices is not a list"},
      {{Ev(R"({"choices":[{"delta":{"content":"a"}}]})"),
        Ev(R"({"error":{"message":"Provider returned error","code":502}})")},
       absl::StatusCode::kUnavailable,
       "Provider returned error"},
      {{Ev(R"({"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}})")},
       absl::StatusCode::kResourceExhausted,
       "Rate limit"},
      {{Ev("[DONE]"), Ev(R"({"choices":[]})")}, absl::StatusCode::kUnavailable, "after the end"},
  };
  for (const Case& c : cases) {
    auto parser = adapter_->NewStreamParser(ctx_);
    EXPECT_THAT(RunStream(*parser, c.events).status, StatusIs(c.code, HasSubstr(c.part)));
  }
}

TEST_F(OpenAiTest, SplitUtf8IsHeldNotDropped) {
  auto parser = adapter_->NewStreamParser(ctx_);
  // A llama-server behind the compatible API may split a character's bytes.
  std::string first = R"({"choices":[{"index":0,"delta":{"content":"caf)";
  first += '\xC3';
  first += R"("}}]})";
  std::string second = R"({"choices":[{"index":0,"delta":{"content":")";
  second += '\xA9';
  second += R"(!"}}]})";
  test::Assembled got =
      RunStream(*parser, {Ev(first), Ev(second),
                          Ev(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"),
                          Ev("[DONE]")});
  ASSERT_THAT(got.status, IsOk());
  EXPECT_EQ(got.text, "caf\xC3\xA9!");
}

TEST(OpenAiFinishReason, Table) {
  EXPECT_EQ(OpenAiFinishReason("stop"), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(OpenAiFinishReason("length"), tiermesh::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(OpenAiFinishReason("tool_calls"), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(OpenAiFinishReason("function_call"), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(OpenAiFinishReason("content_filter"), tiermesh::v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(OpenAiFinishReason("error"), tiermesh::v1::FINISH_REASON_ERROR);
  EXPECT_EQ(OpenAiFinishReason(""), tiermesh::v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(OpenAiFinishReason("weird"), tiermesh::v1::FINISH_REASON_UNSPECIFIED);
}

}  // namespace
}  // namespace tiermesh::cloud
