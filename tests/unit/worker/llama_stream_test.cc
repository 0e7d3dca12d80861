// ChatStreamDecoder: deltas from SSE events, UTF-8 repair across chunks, and the end-of-stream
// contract (complete only with a finish_reason and [DONE]; anything else is an error).
#include "services/worker/llama_stream.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/http/sse.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::worker {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

http::SseEvent Data(std::string data) {
  http::SseEvent event;
  event.event = "message";
  event.data = std::move(data);
  return event;
}

// A content chunk whose JSON string carries `escaped` (JSON escapes allowed).
http::SseEvent Content(const std::string& escaped) {
  return Data(absl::StrCat(R"({"choices":[{"finish_reason":null,"index":0,"delta":{"content":")",
                           escaped, R"("}}],"model":"m","object":"chat.completion.chunk"})"));
}

http::SseEvent Finish(const char* reason) {
  return Data(absl::StrCat(
      R"({"choices":[{"finish_reason":")", reason, R"(","index":0,"delta":{}}],"model":"m",)",
      R"("timings":{"prompt_n":3,"predicted_n":2,"predicted_per_second":50}})"));
}

const http::SseEvent kUsage =
    Data(R"({"choices":[],"model":"m","usage":{"completion_tokens":2,"prompt_tokens":3,)"
         R"("total_tokens":5}})");
const http::SseEvent kDone = Data("[DONE]");

// Feeds `events`; returns the concatenated content and the first error.
struct StreamRun {
  std::string content;
  absl::Status status;
  std::vector<StreamDelta> deltas;
};
StreamRun Feed(ChatStreamDecoder& decoder, const std::vector<http::SseEvent>& events) {
  StreamRun run;
  for (const http::SseEvent& e : events) {
    absl::StatusOr<StreamDelta> delta = decoder.OnEvent(e);
    if (!delta.ok()) {
      run.status = delta.status();
      return run;
    }
    run.content += delta->content;
    if (!delta->empty()) run.deltas.push_back(*delta);
  }
  absl::StatusOr<StreamDelta> last = decoder.Finish();
  if (!last.ok()) {
    run.status = last.status();
    return run;
  }
  run.content += last->content;
  return run;
}

TEST(ChatStreamDecoderTest, CompleteStream) {
  ChatStreamDecoder decoder;
  StreamRun run = Feed(decoder, {Data(R"({"choices":[{"delta":{"role":"assistant","content":null},)"
                                      R"("finish_reason":null,"index":0}],"model":"m"})"),
                                 Content("he"), Content("llo"), Finish("length"), kUsage, kDone});
  ASSERT_OK(run.status);
  EXPECT_EQ(run.content, "hello");
  EXPECT_EQ(run.deltas.size(), 2u);
  EXPECT_TRUE(decoder.done());
  const StreamOutcome& o = decoder.outcome();
  EXPECT_EQ(o.model, "m");
  EXPECT_EQ(o.finish_reason, tiermesh::v1::FINISH_REASON_LENGTH);
  ASSERT_TRUE(o.usage.has_value());
  EXPECT_EQ(o.usage->completion_tokens, 2);
  ASSERT_TRUE(o.timings.has_value());
  EXPECT_EQ(o.timings->predicted_n, 2);
  EXPECT_EQ(o.content_chunks, 2);
  EXPECT_EQ(o.utf8_replacements, 0);
}

TEST(ChatStreamDecoderTest, ContentIsValidUtf8AndReplacementsAreCounted) {
  // JSON cannot carry raw bytes; U+FFFD from the server passes through, and the repair runs on
  // the decoded text.
  ChatStreamDecoder decoder;
  StreamRun run = Feed(decoder, {Content("a\\u00e9"), Content("\\ufffd"), Finish("stop"), kDone});
  ASSERT_OK(run.status);
  EXPECT_EQ(run.content, "a\xC3\xA9\xEF\xBF\xBD");
  EXPECT_EQ(decoder.outcome().utf8_replacements, 0);
}

TEST(ChatStreamDecoderTest, ToolCallDeltasPassThrough) {
  ChatStreamDecoder decoder;
  StreamRun run =
      Feed(decoder,
           {Data(R"({"choices":[{"index":0,"finish_reason":null,"delta":{"tool_calls":[{"index":0,)"
                 R"("id":"c1","type":"function","function":{"name":"get","arguments":""}}]}}]})"),
            Data(R"({"choices":[{"index":0,"finish_reason":null,"delta":{"tool_calls":[{"index":0,)"
                 R"("function":{"arguments":"{\"a\":1}"}}]}}]})"),
            Finish("tool_calls"), kDone});
  ASSERT_OK(run.status);
  ASSERT_EQ(run.deltas.size(), 2u);
  EXPECT_EQ(run.deltas[0].tool_calls[0].id, "c1");
  EXPECT_EQ(run.deltas[0].tool_calls[0].name, "get");
  EXPECT_EQ(run.deltas[1].tool_calls[0].arguments_delta, "{\"a\":1}");
  EXPECT_EQ(decoder.outcome().finish_reason, tiermesh::v1::FINISH_REASON_TOOL_CALLS);
}

TEST(ChatStreamDecoderTest, IncompleteStreamsAreErrorsNeverCleanEnds) {
  struct Case {
    const char* name;
    std::vector<http::SseEvent> events;
    absl::StatusCode code;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"cut before any token", {}, absl::StatusCode::kUnavailable, "before [DONE]"},
      {"cut mid-answer", {Content("par")}, absl::StatusCode::kUnavailable, "before [DONE]"},
      {"cut after finish, before [DONE]",
       {Content("x"), Finish("stop"), kUsage},
       absl::StatusCode::kUnavailable,
       "before [DONE]"},
      {"[DONE] without finish_reason",
       {Content("x"), kDone},
       absl::StatusCode::kInternal,
       "without a finish_reason"},
      {"error payload mid-stream",
       {Content("x"), Data(R"({"error":{"code":500,"message":"decode failed",)"
                           R"("type":"server_error"}})")},
       absl::StatusCode::kInternal,
       "decode failed"},
      {"malformed chunk",
       {Content("x"), Data("{not json")},
       absl::StatusCode::kInternal,
       "malformed"},
      {"data after [DONE]",
       {Content("x"), Finish("stop"), kDone, Content("y")},
       absl::StatusCode::kInternal,
       "after [DONE]"},
      {"explicit error event",
       {[] {
         http::SseEvent e = Data("{}");
         e.event = "error";
         return e;
       }()},
       absl::StatusCode::kInternal,
       "error event"},
  };
  for (const Case& c : cases) {
    ChatStreamDecoder decoder;
    StreamRun run = Feed(decoder, c.events);
    EXPECT_THAT(run.status, StatusIs(c.code, HasSubstr(c.message))) << c.name;
    // Errors are sticky.
    EXPECT_FALSE(decoder.Finish().ok()) << c.name;
  }
}

TEST(ChatStreamDecoderTest, PartialUsageSurvivesAnError) {
  ChatStreamDecoder decoder;
  StreamRun run = Feed(decoder, {Content("x"), Finish("stop"), kUsage});
  EXPECT_FALSE(run.status.ok());
  ASSERT_TRUE(decoder.outcome().usage.has_value());
  EXPECT_EQ(decoder.outcome().usage->completion_tokens, 2);
}

// End to end with the real SSE decoder: keep-alive comments, CRLF, and a body split at every
// byte give the same deltas.
TEST(ChatStreamDecoderTest, WorksBehindTheSseDecoderAtEverySplit) {
  const std::string body =
      absl::StrCat(": keep-alive\r\n\r\n", "data: ", Content("h\\u00e9").data, "\r\n\r\n", ":\n\n",
                   "data: ", Content("llo").data, "\n\n", "data: ", Finish("stop").data, "\n\n",
                   "data: ", kUsage.data, "\n\n", "data: [DONE]\n\n");
  for (size_t split = 0; split <= body.size(); ++split) {
    http::SseDecoder sse;
    ChatStreamDecoder decoder;
    std::string content;
    absl::Status status;
    for (absl::string_view piece :
         {absl::string_view(body).substr(0, split), absl::string_view(body).substr(split)}) {
      ASSERT_OK(sse.Feed(piece, [&](http::SseEvent&& e) {
        absl::StatusOr<StreamDelta> d = decoder.OnEvent(e);
        if (!d.ok()) {
          status = d.status();
        } else {
          content += d->content;
        }
      }));
    }
    ASSERT_OK(sse.Finish());
    ASSERT_OK(status);
    ASSERT_OK_AND_ASSIGN(StreamDelta last, decoder.Finish());
    content += last.content;
    ASSERT_EQ(content, "h\xC3\xA9llo") << "split " << split;
  }
}

}  // namespace
}  // namespace tiermesh::worker
