// The llama-server JSON edge: request validation and body building, response, chunk and error
// parsing. Response samples are shaped like what llama-server (node-llama-cpp 3.22.1's llama.cpp)
// really sends, captured from the real binary running the generated test model.
#include "services/worker/llama_api.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::worker {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;
using Json = nlohmann::json;

tiermesh::v1::GenerateRequest Request(const std::string& text_proto) {
  tiermesh::v1::GenerateRequest request;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text_proto, &request)) << text_proto;
  return request;
}

const char kMinimal[] = R"pb(
  model: "tiny"
  messages { role: ROLE_USER content: "hi" }
)pb";

TEST(BuildChatCompletionBodyTest, MinimalUnaryAndStreaming) {
  ASSERT_OK_AND_ASSIGN(std::string unary, BuildChatCompletionBody(Request(kMinimal), false));
  EXPECT_EQ(Json::parse(unary), Json::parse(R"({
      "model": "tiny",
      "messages": [{"role": "user", "content": "hi"}],
      "stream": false})"));
  ASSERT_OK_AND_ASSIGN(std::string stream, BuildChatCompletionBody(Request(kMinimal), true));
  EXPECT_EQ(Json::parse(stream), Json::parse(R"({
      "model": "tiny",
      "messages": [{"role": "user", "content": "hi"}],
      "stream": true,
      "stream_options": {"include_usage": true}})"));
}

TEST(BuildChatCompletionBodyTest, ForwardsEveryAllowedParameter) {
  ASSERT_OK_AND_ASSIGN(
      std::string body,
      BuildChatCompletionBody(
          Request(R"pb(
            model: "tiny"
            messages { role: ROLE_SYSTEM content: "be brief" }
            messages { role: ROLE_USER content: "weather?" name: "ann" }
            messages {
              role: ROLE_ASSISTANT
              tool_calls { id: "call_1" name: "get_weather" arguments_json: "{\"city\":\"Oslo\"}" }
            }
            messages { role: ROLE_TOOL content: "12C" tool_call_id: "call_1" }
            tools {
              name: "get_weather"
              description: "Weather now"
              parameters_json_schema: "{\"type\":\"object\","
                                      "\"properties\":{\"city\":{\"type\":\"string\"}}}"
            }
            tools { name: "noop" }
            tool_choice { mode: MODE_AUTO }
            params {
              max_tokens: 16
              temperature: 0.5
              top_p: 0.75
              top_k: 40
              stop: "\n\n"
              stop: "END"
              seed: 42
              presence_penalty: -1
              frequency_penalty: 1.5
              json_mode: true
            }
            request_id: "not forwarded"
          )pb"),
          false));
  EXPECT_EQ(Json::parse(body), Json::parse(R"({
      "model": "tiny",
      "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?", "name": "ann"},
        {"role": "assistant", "content": "", "tool_calls": [
          {"id": "call_1", "type": "function",
           "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
        {"role": "tool", "content": "12C", "tool_call_id": "call_1"}],
      "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "noop",
          "parameters": {"type": "object", "properties": {}}}}],
      "tool_choice": "auto",
      "max_tokens": 16, "temperature": 0.5, "top_p": 0.75, "top_k": 40,
      "stop": ["\n\n", "END"], "seed": 42, "presence_penalty": -1.0, "frequency_penalty": 1.5,
      "response_format": {"type": "json_object"},
      "stream": false})"));
}

TEST(BuildChatCompletionBodyTest, ToolChoiceModes) {
  const std::string tools = R"pb(
    messages { role: ROLE_USER content: "x" }
    tools { name: "a" }
    tools { name: "b" }
  )pb";
  struct Case {
    const char* choice;
    const char* expected_choice;
    std::vector<std::string> expected_tools;
  };
  const std::vector<Case> cases = {
      {"", "auto", {"a", "b"}},
      {"tool_choice { mode: MODE_AUTO }", "auto", {"a", "b"}},
      {"tool_choice { mode: MODE_NONE }", "none", {"a", "b"}},
      {"tool_choice { mode: MODE_REQUIRED }", "required", {"a", "b"}},
      // llama-server has no named tool choice: "required" over just that tool means the same.
      {"tool_choice { mode: MODE_FUNCTION function_name: \"b\" }", "required", {"b"}},
  };
  for (const Case& c : cases) {
    ASSERT_OK_AND_ASSIGN(std::string body,
                         BuildChatCompletionBody(Request(tools + c.choice), false));
    const Json json = Json::parse(body);
    EXPECT_EQ(json["tool_choice"], c.expected_choice) << c.choice;
    std::vector<std::string> names;
    for (const Json& tool : json["tools"]) names.push_back(tool["function"]["name"]);
    EXPECT_EQ(names, c.expected_tools) << c.choice;
  }
  // Without tools no tool keys are sent at all.
  ASSERT_OK_AND_ASSIGN(std::string plain, BuildChatCompletionBody(Request(kMinimal), false));
  EXPECT_FALSE(Json::parse(plain).contains("tool_choice"));
  EXPECT_FALSE(Json::parse(plain).contains("tools"));
}

TEST(BuildChatCompletionBodyTest, BoundaryValuesAreAccepted) {
  const std::vector<std::string> ok = {
      "max_tokens: 1",
      "max_tokens: 1048576",
      "temperature: 0",
      "temperature: 2",
      "top_p: 1",
      "top_p: 0.000001",
      "top_k: 0",
      "seed: 0",
      "seed: 4294967294",
      "presence_penalty: -2",
      "presence_penalty: 2",
      "frequency_penalty: -2",
      "frequency_penalty: 2",
      "stop: 'a' stop: 'b' stop: 'c' stop: 'd'",
  };
  for (const std::string& params : ok) {
    const std::string text = std::string(kMinimal) + " params { " + params + " }";
    EXPECT_TRUE(BuildChatCompletionBody(Request(text), false).ok()) << params;
  }
}

TEST(BuildChatCompletionBodyTest, RejectsEveryOutOfRangeOrMalformedField) {
  struct Case {
    std::string request;
    const char* message;
  };
  const std::string user = "messages { role: ROLE_USER content: 'x' } ";
  const std::vector<Case> cases = {
      {"model: 'tiny'", "messages must not be empty"},
      {"messages { content: 'x' }", "messages[0].role"},
      {user + "messages { role: ROLE_TOOL content: 'r' }", "needs tool_call_id"},
      {"messages { role: ROLE_USER content: 'x' tool_calls { name: 'a' } }",
       "only ASSISTANT messages carry tool_calls"},
      {"messages { role: ROLE_ASSISTANT tool_calls { name: 'bad name' } }", "tool_calls[0].name"},
      {"messages { role: ROLE_ASSISTANT tool_calls { name: 'a' arguments_json: '[1]' } }",
       "arguments_json must be a JSON object"},
      {"messages { role: ROLE_ASSISTANT tool_calls { name: 'a' arguments_json: '{' } }",
       "arguments_json must be a JSON object"},
      {user + "params { max_tokens: 0 }", "params.max_tokens is 0"},
      {user + "params { max_tokens: 1048577 }", "params.max_tokens is 1048577"},
      {user + "params { temperature: -0.1 }", "params.temperature"},
      {user + "params { temperature: 2.01 }", "params.temperature"},
      {user + "params { temperature: nan }", "params.temperature"},
      {user + "params { top_p: 0 }", "params.top_p"},
      {user + "params { top_p: 1.5 }", "params.top_p"},
      {user + "params { top_k: -1 }", "params.top_k"},
      {user + "params { top_k: 2000000 }", "params.top_k"},
      {user + "params { stop: 'a' stop: 'b' stop: 'c' stop: 'd' stop: 'e' }",
       "params.stop has 5 sequences"},
      {user + "params { stop: '' }", "params.stop[0]"},
      {user + "params { stop: '" + std::string(257, 'x') + "' }", "params.stop[0]"},
      {user + "params { seed: -1 }", "params.seed is -1"},
      {user + "params { seed: 4294967295 }", "params.seed is 4294967295"},
      {user + "params { presence_penalty: 2.5 }", "params.presence_penalty"},
      {user + "params { frequency_penalty: -3 }", "params.frequency_penalty"},
      {user + "params { frequency_penalty: inf }", "params.frequency_penalty"},
      {user + "tools { name: '' }", "tools[0].name"},
      {user + "tools { name: 'has space' }", "tools[0].name"},
      {user + "tools { name: '" + std::string(65, 'a') + "' }", "tools[0].name"},
      {user + "tools { name: 'a' } tools { name: 'a' }", "offered twice"},
      {user + "tools { name: 'a' parameters_json_schema: 'not json' }",
       "tools[0].parameters_json_schema must be a JSON object"},
      {user + "tools { name: 'a' parameters_json_schema: '\"string\"' }",
       "tools[0].parameters_json_schema must be a JSON object"},
      {user + "tool_choice { mode: MODE_REQUIRED }", "REQUIRED needs tools"},
      {user + "tools { name: 'a' } tool_choice { mode: MODE_FUNCTION function_name: 'b' }",
       "'b' is not one of the offered tools"},
      {user + "tools { name: 'a' } tool_choice { mode: MODE_AUTO function_name: 'a' }",
       "only allowed with MODE_FUNCTION"},
      {user + "tool_choice { mode: 99 }", "tool_choice.mode 99 is unknown"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(BuildChatCompletionBody(Request(c.request), false),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.request;
  }
}

TEST(BuildChatCompletionBodyTest, RejectsInvalidUtf8BuiltInProcess) {
  tiermesh::v1::GenerateRequest request = Request(kMinimal);
  request.mutable_messages(0)->set_content("bad \xC3");
  EXPECT_THAT(BuildChatCompletionBody(request, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid UTF-8")));
  request = Request(kMinimal);
  request.mutable_params()->add_stop("\xFF");
  EXPECT_THAT(BuildChatCompletionBody(request, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("params.stop[0]")));
}

TEST(ParseFinishReasonTest, Table) {
  EXPECT_EQ(ParseFinishReason("stop"), tiermesh::v1::FINISH_REASON_STOP);
  EXPECT_EQ(ParseFinishReason("length"), tiermesh::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(ParseFinishReason("tool_calls"), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(ParseFinishReason("function_call"), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(ParseFinishReason("content_filter"), tiermesh::v1::FINISH_REASON_CONTENT_FILTER);
  EXPECT_EQ(ParseFinishReason(""), tiermesh::v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(ParseFinishReason("something_new"), tiermesh::v1::FINISH_REASON_UNSPECIFIED);
}

// Shaped like llama-server's answer to a unary request on the test model.
const char kUnaryResponse[] = R"({
  "choices": [{"finish_reason": "length", "index": 0,
               "message": {"role": "assistant", "content": "\u00e9\ufffdab"}}],
  "created": 1795000000, "model": "tiny.gguf", "system_fingerprint": "b1-de3ff81",
  "object": "chat.completion",
  "usage": {"completion_tokens": 8, "prompt_tokens": 12, "total_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 3}},
  "id": "chatcmpl-abc",
  "timings": {"cache_n": 3, "prompt_n": 9, "prompt_ms": 1.5, "prompt_per_token_ms": 0.1,
              "prompt_per_second": 6000.0, "predicted_n": 8, "predicted_ms": 2.0,
              "predicted_per_token_ms": 0.25, "predicted_per_second": 4000.0}
})";

TEST(ParseChatCompletionTest, UnaryResponse) {
  ASSERT_OK_AND_ASSIGN(LlamaCompletion c, ParseChatCompletion(kUnaryResponse));
  EXPECT_EQ(c.model, "tiny.gguf");
  EXPECT_EQ(c.content,
            "\xC3\xA9\xEF\xBF\xBD"
            "ab");
  EXPECT_EQ(c.finish_reason, tiermesh::v1::FINISH_REASON_LENGTH);
  ASSERT_TRUE(c.usage.has_value());
  EXPECT_EQ(c.usage->prompt_tokens, 12);
  EXPECT_EQ(c.usage->completion_tokens, 8);
  EXPECT_EQ(c.usage->cached_prompt_tokens, 3);
  ASSERT_TRUE(c.timings.has_value());
  EXPECT_EQ(c.timings->prompt_n, 9);
  EXPECT_EQ(c.timings->cache_n, 3);
  EXPECT_EQ(c.timings->predicted_n, 8);
  EXPECT_DOUBLE_EQ(c.timings->predicted_per_second, 4000.0);
  EXPECT_TRUE(c.tool_calls.empty());
}

TEST(ParseChatCompletionTest, ToolCallsAndNullContent) {
  ASSERT_OK_AND_ASSIGN(LlamaCompletion c, ParseChatCompletion(R"({
    "choices": [{"finish_reason": "tool_calls", "index": 0, "message": {
      "role": "assistant", "content": null,
      "tool_calls": [
        {"type": "function", "id": "k1", "function": {"name": "get", "arguments": "{\"a\":1}"}},
        {"type": "function", "id": "k2", "function": {"name": "put", "arguments": {"b": 2}}}]}}],
    "model": "m"})"));
  EXPECT_EQ(c.content, "");
  EXPECT_EQ(c.finish_reason, tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  ASSERT_EQ(c.tool_calls.size(), 2u);
  EXPECT_EQ(c.tool_calls[0].id, "k1");
  EXPECT_EQ(c.tool_calls[0].name, "get");
  EXPECT_EQ(c.tool_calls[0].arguments_json, "{\"a\":1}");
  EXPECT_EQ(c.tool_calls[1].arguments_json, "{\"b\":2}");  // an object is re-encoded
  EXPECT_FALSE(c.usage.has_value());
}

TEST(ParseChatCompletionTest, MalformedResponsesAreInternalErrors) {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      "{}",
      R"({"choices": []})",
      R"({"choices": [{"message": 5}]})",
      R"({"choices": [{"message": {"content": 5}}]})",
      R"({"choices": [{"message": {"content": "x"}, "finish_reason": 1}]})",
      R"({"choices": [{"message": {"content": "x", "tool_calls": {}}}]})",
      R"({"choices": [{"message": {"content": "x", "tool_calls": [{"id": "1"}]}}]})",
      R"({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "3"}})",
      R"({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -3}})",
      R"({"choices": [{"message": {"content": "x"}}], "timings": []})",
      R"({"choices": [{"message": {"content": "x"}}], "model": 7})",
  };
  for (const std::string& body : bad) {
    EXPECT_THAT(ParseChatCompletion(body), StatusIs(absl::StatusCode::kInternal, HasSubstr("")))
        << body;
  }
}

TEST(ParseChatCompletionTest, RawInvalidUtf8IsRepairedNotFatal) {
  // Valid JSON can carry only UTF-8; if a server ever sent raw bytes, the text survives with
  // U+FFFD instead of the whole answer failing.
  ASSERT_OK_AND_ASSIGN(LlamaCompletion c,
                       ParseChatCompletion("{\"choices\": [{\"message\": {\"content\": \"a\xFF"
                                           "b\"}, \"finish_reason\": \"stop\"}]}"));
  EXPECT_EQ(c.content,
            "a\xEF\xBF\xBD"
            "b");
}

TEST(ParseChatCompletionChunkTest, ContentToolCallsFinishUsageTimings) {
  ASSERT_OK_AND_ASSIGN(LlamaChunk role, ParseChatCompletionChunk(R"({
    "choices": [{"finish_reason": null, "index": 0,
                 "delta": {"role": "assistant", "content": null}}],
    "created": 1, "id": "c", "model": "m", "object": "chat.completion.chunk"})"));
  EXPECT_EQ(role.content_delta, "");
  EXPECT_FALSE(role.finish_reason.has_value());

  ASSERT_OK_AND_ASSIGN(
      LlamaChunk text,
      ParseChatCompletionChunk(
          R"({"choices": [{"finish_reason": null, "index": 0, "delta": {"content": "ab\u00e9"}}],
          "model": "m", "object": "chat.completion.chunk"})"));
  EXPECT_EQ(text.content_delta, "ab\xC3\xA9");

  ASSERT_OK_AND_ASSIGN(LlamaChunk call, ParseChatCompletionChunk(R"({"choices": [{"index": 0,
      "finish_reason": null, "delta": {"tool_calls": [{"index": 1, "id": "t1", "type": "function",
      "function": {"name": "get", "arguments": "{\"ci"}}]}}], "model": "m"})"));
  ASSERT_EQ(call.tool_call_deltas.size(), 1u);
  EXPECT_EQ(call.tool_call_deltas[0].index, 1);
  EXPECT_EQ(call.tool_call_deltas[0].id, "t1");
  EXPECT_EQ(call.tool_call_deltas[0].name, "get");
  EXPECT_EQ(call.tool_call_deltas[0].arguments_delta, "{\"ci");

  ASSERT_OK_AND_ASSIGN(LlamaChunk finish, ParseChatCompletionChunk(R"({"choices": [{"index": 0,
      "finish_reason": "length", "delta": {}}], "model": "m",
      "timings": {"prompt_n": 5, "predicted_n": 4, "predicted_per_second": 100.5}})"));
  EXPECT_EQ(finish.finish_reason, tiermesh::v1::FINISH_REASON_LENGTH);
  ASSERT_TRUE(finish.timings.has_value());
  EXPECT_EQ(finish.timings->predicted_n, 4);

  ASSERT_OK_AND_ASSIGN(LlamaChunk usage, ParseChatCompletionChunk(R"({"choices": [],
      "model": "m", "usage": {"completion_tokens": 4, "prompt_tokens": 5, "total_tokens": 9}})"));
  ASSERT_TRUE(usage.usage.has_value());
  EXPECT_EQ(usage.usage->completion_tokens, 4);
  EXPECT_EQ(usage.usage->prompt_tokens, 5);
  EXPECT_FALSE(usage.finish_reason.has_value());
}

TEST(ParseChatCompletionChunkTest, ErrorPayloadBecomesItsStatus) {
  EXPECT_THAT(ParseChatCompletionChunk(
                  R"({"error": {"code": 500, "message": "boom", "type": "server_error"}})"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("llama-server: boom")));
  EXPECT_THAT(ParseChatCompletionChunk(R"({"error": {"code": 400, "message": "too long",
                                         "type": "exceed_context_size_error"}})"),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("too long")));
}

TEST(ParseChatCompletionChunkTest, MalformedChunks) {
  const std::vector<std::string> bad = {
      "{",
      "[1]",
      "\"x\"",
      R"({"choices": {}})",
      R"({"choices": [5]})",
      R"({"choices": [{"delta": []}]})",
      R"({"choices": [{"delta": {"content": 1}}]})",
      R"({"choices": [{"delta": {"tool_calls": [{"index": -1}]}}]})",
      R"({"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]})",
      R"({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]})",
      R"({"choices": [{"delta": {}, "finish_reason": 3}]})",
  };
  for (const std::string& data : bad) {
    EXPECT_THAT(ParseChatCompletionChunk(data),
                StatusIs(absl::StatusCode::kInternal, HasSubstr("malformed")))
        << data;
  }
}

TEST(LlamaErrorToStatusTest, MapsLlamaServerErrors) {
  struct Case {
    int http_status;
    std::string body;
    absl::StatusCode code;
    const char* message;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {503, R"({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})",
       absl::StatusCode::kUnavailable, "llama-server: Loading model", ""},
      {400, R"({"error": {"code": 400, "message": "the request exceeds the available context size",
               "type": "exceed_context_size_error", "n_prompt_tokens": 9000, "n_ctx": 4096}})",
       absl::StatusCode::kOutOfRange, "exceeds the available context", "context_length_exceeded"},
      {400, R"({"error": {"code": 400, "message": "bad tool", "type": "invalid_request_error"}})",
       absl::StatusCode::kInvalidArgument, "bad tool", ""},
      {500, R"({"error": {"code": 500, "message": "oops", "type": "server_error"}})",
       absl::StatusCode::kInternal, "oops", ""},
      {401,
       R"({"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}})",
       absl::StatusCode::kInternal, "API key", ""},
      {404, R"({"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})",
       absl::StatusCode::kNotFound, "File Not Found", ""},
      {502, "<html>bad gateway</html>", absl::StatusCode::kUnavailable, "<html>bad gateway", ""},
      {503, "", absl::StatusCode::kUnavailable, "HTTP 503", ""},
      {429, "slow down", absl::StatusCode::kResourceExhausted, "slow down", ""},
  };
  for (const Case& c : cases) {
    const absl::Status status = LlamaErrorToStatus(c.http_status, c.body);
    EXPECT_EQ(status.code(), c.code) << c.body << " -> " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message)) << c.body;
    EXPECT_EQ(ErrorReason(status), c.reason) << c.body;
  }
}

TEST(LlamaErrorToStatusTest, LongOrInvalidMessagesAreCutAndRepaired) {
  const std::string huge(10000, 'x');
  const absl::Status status = LlamaErrorToStatus(500, huge);
  EXPECT_LT(status.message().size(), 600u);
  const absl::Status bytes = LlamaErrorToStatus(500, "bad \xFF bytes");
  EXPECT_THAT(std::string(bytes.message()), HasSubstr("bad \xEF\xBF\xBD bytes"));
}

}  // namespace
}  // namespace tiermesh::worker
