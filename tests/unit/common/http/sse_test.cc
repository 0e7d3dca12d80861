#include "services/common/http/sse.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::http {

// Readable failure output (found by gtest through ADL, so not in the
// anonymous namespace).
void PrintTo(const SseEvent& e, std::ostream* os) {
  *os << "{event=" << ::testing::PrintToString(e.event)
      << " data=" << ::testing::PrintToString(e.data) << " id=" << ::testing::PrintToString(e.id)
      << " retry=" << (e.retry_ms.has_value() ? absl::StrCat(*e.retry_ms) : "none") << "}";
}

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

SseEvent Ev(std::string data, std::string event = "message", std::string id = "",
            absl::optional<int64_t> retry = absl::nullopt) {
  return SseEvent{std::move(event), std::move(data), std::move(id), retry};
}

// What decoding produced: the events and the final status (first error of
// Feed, else Finish's).
struct Outcome {
  std::vector<SseEvent> events;
  absl::Status status;
};

Outcome DecodePieces(const std::vector<absl::string_view>& pieces, SseDecoderOptions options = {}) {
  Outcome out;
  SseDecoder decoder(options);
  for (absl::string_view piece : pieces) {
    out.status = decoder.Feed(piece, [&](SseEvent&& e) { out.events.push_back(std::move(e)); });
    if (!out.status.ok()) return out;
  }
  out.status = decoder.Finish();
  return out;
}

Outcome DecodeWhole(absl::string_view input, SseDecoderOptions options = {}) {
  return DecodePieces({input}, options);
}

// Every way of cutting `input` in two, and byte-by-byte, must give exactly
// what one whole feed gives.
void ExpectChunkingInvariant(absl::string_view input, SseDecoderOptions options = {}) {
  const Outcome whole = DecodeWhole(input, options);
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    const Outcome split = DecodePieces({input.substr(0, cut), input.substr(cut)}, options);
    ASSERT_EQ(split.events, whole.events) << "split at byte " << cut;
    ASSERT_EQ(split.status, whole.status) << "split at byte " << cut;
  }
  std::vector<absl::string_view> bytes;
  for (size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
  const Outcome one_by_one = DecodePieces(bytes, options);
  EXPECT_EQ(one_by_one.events, whole.events) << "one byte at a time";
  EXPECT_EQ(one_by_one.status, whole.status) << "one byte at a time";
}

struct Case {
  std::string name;
  std::string input;
  std::vector<SseEvent> events;
  absl::StatusCode finish = absl::StatusCode::kOk;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<Case> Cases() {
  using namespace std::string_literals;  // NOLINT(build/namespaces): "\0" in literals
  return {
      {"Empty", "", {}},
      {"OnlyBlankLines", "\n\n\r\n\r", {}},
      {"SimpleData", "data: hello\n\n", {Ev("hello")}},
      {"NoSpaceAfterColon", "data:hello\n\n", {Ev("hello")}},
      {"OnlyOneSpaceRemoved", "data:  hello\n\n", {Ev(" hello")}},
      {"TabIsKept", "data:\thello\n\n", {Ev("\thello")}},
      {"ColonInValue", "data: a:b: c\n\n", {Ev("a:b: c")}},
      {"MultiLineData", "data: YHOO\ndata: +2\ndata: 10\n\n", {Ev("YHOO\n+2\n10")}},
      {"EmptyDataLineDispatchesEmpty", "data\n\n", {Ev("")}},
      {"EmptyDataWithColon", "data:\n\n", {Ev("")}},
      {"TwoEmptyDataLines", "data\ndata\n\n", {Ev("\n")}},
      {"TrailingSpaceKept", "data: x \n\n", {Ev("x ")}},
      {"EventType", "event: ping\ndata: {}\n\n", {Ev("{}", "ping")}},
      {"EventTypeNoSpace", "event:add\ndata: 1\n\n", {Ev("1", "add")}},
      {"ExplicitMessageType", "event: message\ndata: x\n\n", {Ev("x")}},
      {"EventWithoutDataNotDispatched", "event: ping\n\n", {}},
      {"EventTypeResetAfterUndispatched", "event: ping\n\ndata: x\n\n", {Ev("x")}},
      {"EventTypeResetBetweenEvents", "event: a\ndata: 1\n\ndata: 2\n\n", {Ev("1", "a"), Ev("2")}},
      {"IdPersists",
       "id: 7\ndata: a\n\ndata: b\n\n",
       {Ev("a", "message", "7"), Ev("b", "message", "7")}},
      {"IdClearedByEmptyId",
       "id: 7\ndata: a\n\nid\ndata: b\n\n",
       {Ev("a", "message", "7"), Ev("b")}},
      {"IdWithNulIgnored", "id: a\0b\ndata: x\n\n"s, {Ev("x")}},
      {"IdFromUndispatchedEventCarriesOver", "id: 9\n\ndata: x\n\n", {Ev("x", "message", "9")}},
      {"Retry", "retry: 1500\ndata: x\n\n", {Ev("x", "message", "", 1500)}},
      {"RetryOnlyForItsEvent",
       "retry: 5\ndata: a\n\ndata: b\n\n",
       {Ev("a", "message", "", 5), Ev("b")}},
      {"RetryNotDigitsIgnored", "retry: 15a\ndata: x\n\n", {Ev("x")}},
      {"RetryNegativeIgnored", "retry: -1\ndata: x\n\n", {Ev("x")}},
      {"RetryEmptyIgnored", "retry:\ndata: x\n\n", {Ev("x")}},
      {"RetryOverflowIgnored", "retry: 99999999999999999999999\ndata: x\n\n", {Ev("x")}},
      {"CommentIgnored", ": keep-alive\n\ndata: x\n\n", {Ev("x")}},
      {"CommentInsideEvent", "data: a\n: ping\ndata: b\n\n", {Ev("a\nb")}},
      {"UnknownFieldIgnored", "foo: bar\ndata: x\n\n", {Ev("x")}},
      {"FieldNamesCaseSensitive", "Data: x\n\n", {}},
      {"CrLf", "data: a\r\n\r\ndata: b\r\n\r\n", {Ev("a"), Ev("b")}},
      {"CrOnly", "data: a\rdata: b\r\r", {Ev("a\nb")}},
      {"MixedEndings", "data: a\r\ndata: b\rdata: c\n\r\n", {Ev("a\nb\nc")}},
      {"CrCrIsTwoLines", "data: a\r\r", {Ev("a")}},
      {"LfCrIsTwoLines", "data: a\n\r", {Ev("a")}},
      {"Bom",
       "\xEF\xBB\xBF"
       "data: x\n\n",
       {Ev("x")}},
      {"SecondBomIsData",
       "\xEF\xBB\xBF\xEF\xBB\xBF"
       "data: x\n\n",
       {}},
      {"BomInsideValueKept", "data: \xEF\xBB\xBF\n\n", {Ev("\xEF\xBB\xBF")}},
      {"PartialBomIsData",
       "\xEF\xBB"
       "data: x\n\n",
       {}},
      {"InvalidUtf8KeptAsIs", "data: \xFF\xFE\x80 \xC3\n\n", {Ev("\xFF\xFE\x80 \xC3")}},
      {"NulInDataKept", "data: a\0b\n\n"s, {Ev("a\0b"s)}},
      {"OpenAiStream",
       "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n"
       ": OPENROUTER PROCESSING\n\n"
       "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n"
       "data: [DONE]\n\n",
       {Ev("{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}"),
        Ev("{\"choices\":[],\"usage\":{\"total_tokens\":3}}"), Ev("[DONE]")}},
      {"AnthropicStream",
       "event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
       "event: ping\ndata: {\"type\": \"ping\"}\n\n"
       "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
       {Ev("{\"type\":\"message_start\"}", "message_start"), Ev("{\"type\": \"ping\"}", "ping"),
        Ev("{\"type\":\"message_stop\"}", "message_stop")}},
      {"GeminiCrLfStream",
       "data: {\"candidates\":[]}\r\n\r\ndata: {\"usageMetadata\":{}}\r\n\r\n",
       {Ev("{\"candidates\":[]}"), Ev("{\"usageMetadata\":{}}")}},
      // Truncation: Finish reports DATA_LOSS, the incomplete event is dropped.
      {"TruncatedNoNewline", "data: x", {}, absl::StatusCode::kDataLoss},
      {"TruncatedNoBlankLine", "data: x\n", {}, absl::StatusCode::kDataLoss},
      {"TruncatedAfterEvent", "data: a\n\ndata: b", {Ev("a")}, absl::StatusCode::kDataLoss},
      {"TruncatedAfterCr", "data: a\r", {}, absl::StatusCode::kDataLoss},
      {"TruncatedEventFieldOnly", "event: x\n", {}, absl::StatusCode::kDataLoss},
      {"TruncatedUnterminatedComment", ": ping", {}, absl::StatusCode::kDataLoss},
      {"TruncatedPartialBom", "\xEF\xBB", {}, absl::StatusCode::kDataLoss},
      {"CommentAfterLastEventIsClean", "data: a\n\n: bye\n", {Ev("a")}},
      {"TrailingCrLfOfLastEventSplitIsClean", "data: a\r\n\r\n", {Ev("a")}},
  };
}

class SseTableTest : public ::testing::TestWithParam<Case> {};

TEST_P(SseTableTest, DecodesAsSpecified) {
  const Case& c = GetParam();
  const Outcome out = DecodeWhole(c.input);
  EXPECT_EQ(out.events, c.events);
  EXPECT_EQ(out.status.code(), c.finish) << out.status;
}

TEST_P(SseTableTest, EveryChunkingGivesTheSameResult) { ExpectChunkingInvariant(GetParam().input); }

INSTANTIATE_TEST_SUITE_P(Spec, SseTableTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           return param.param.name;
                         });

TEST(SseDecoderTest, LongMixedStreamSplitAtEveryBoundaryAndThreeWays) {
  std::string stream = "\xEF\xBB\xBF: hello\r\n";
  for (int i = 0; i < 6; ++i) {
    absl::StrAppend(&stream, "id: ", i, "\r\nevent: e", i, "\ndata: line ", i,
                    "\rdata: \xF0\x9F\x98", "\n", (i % 2 == 0 ? "retry: 10\n" : ": ka\r"), "\r\n");
  }
  const Outcome whole = DecodeWhole(stream);
  ASSERT_THAT(whole.status, IsOk());
  ASSERT_EQ(whole.events.size(), 6u);
  EXPECT_EQ(whole.events[3], Ev("line 3\n\xF0\x9F\x98", "e3", "3"));
  EXPECT_EQ(whole.events[4], Ev("line 4\n\xF0\x9F\x98", "e4", "4", 10));
  ExpectChunkingInvariant(stream);
  // Three pieces at a sample of cut pairs.
  for (size_t a = 0; a <= stream.size(); a += 3) {
    for (size_t b = a; b <= stream.size(); b += 5) {
      const absl::string_view s = stream;
      const Outcome three = DecodePieces({s.substr(0, a), s.substr(a, b - a), s.substr(b)});
      ASSERT_EQ(three.events, whole.events) << a << "," << b;
      ASSERT_THAT(three.status, IsOk());
    }
  }
}

TEST(SseDecoderTest, CountsCommentsAndEventsAndTracksLastIdAndRetry) {
  SseDecoder decoder;
  int events = 0;
  ASSERT_THAT(
      decoder.Feed(": a\n: b\nid: 5\nretry: 300\n\n:c\ndata: x\n\n", [&](SseEvent&&) { ++events; }),
      IsOk());
  EXPECT_EQ(decoder.comment_count(), 3);
  EXPECT_EQ(decoder.event_count(), 1);
  EXPECT_EQ(events, 1);
  EXPECT_EQ(decoder.last_event_id(), "5");  // from the event that had no data
  EXPECT_EQ(decoder.last_retry_ms(), absl::optional<int64_t>(300));
  EXPECT_THAT(decoder.Finish(), IsOk());
}

TEST(SseDecoderTest, LineAtTheLimitIsAcceptedOneMoreByteIsNot) {
  SseDecoderOptions options;
  options.max_line_bytes = 16;
  EXPECT_THAT(DecodeWhole("data: 0123456789\n\n", options).status, IsOk());  // 16 bytes
  const Outcome out = DecodeWhole("data: 0123456789a\n\n", options);
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kResourceExhausted,
                                   HasSubstr("max_line_bytes (16 bytes)")));
  EXPECT_THAT(out.events, IsEmpty());
  ExpectChunkingInvariant("data: ok\n\ndata: 0123456789abcdef\n\ndata: never\n\n", options);
}

TEST(SseDecoderTest, OversizedLineFailsBeforeItsEndArrives) {
  SseDecoder decoder;  // default: 1 MiB
  const std::string piece(64 << 10, 'x');
  absl::Status status = decoder.Feed("data: ", nullptr);
  size_t fed = 6;
  while (status.ok() && fed < (4u << 20)) {
    status = decoder.Feed(piece, nullptr);
    fed += piece.size();
  }
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_line_bytes")));
  EXPECT_LE(fed, (1u << 20) + piece.size());  // failed as soon as the limit was crossed
  // Sticky: later calls keep failing the same way.
  EXPECT_EQ(decoder.Feed("\n\n", nullptr), status);
  EXPECT_EQ(decoder.Finish(), status);
}

TEST(SseDecoderTest, EventsBeforeTheOversizedLineAreDelivered) {
  SseDecoderOptions options;
  options.max_line_bytes = 8;
  const Outcome out = DecodeWhole("data: a\n\ndata: toolongvalue\n\n", options);
  EXPECT_THAT(out.events, ElementsAre(Ev("a")));
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("8 bytes")));
}

TEST(SseDecoderTest, OversizedEventFromManyShortLines) {
  SseDecoderOptions options;
  options.max_event_bytes = 20;
  std::string input;
  for (int i = 0; i < 10; ++i) input += "data: abcd\n";
  input += "\n";
  const Outcome out = DecodeWhole(input, options);
  EXPECT_THAT(out.status, StatusIs(absl::StatusCode::kResourceExhausted,
                                   HasSubstr("max_event_bytes (20 bytes)")));
  ExpectChunkingInvariant(input, options);
  // Exactly at the limit: 4 lines of 4 bytes + 3 joins = 19, + event type "x" = 20.
  EXPECT_THAT(
      DecodeWhole("event: x\ndata: abcd\ndata: abcd\ndata: abcd\ndata: abcd\n\n", options).status,
      IsOk());
}

TEST(SseDecoderTest, FeedAfterFinishFails) {
  SseDecoder decoder;
  ASSERT_THAT(decoder.Finish(), IsOk());
  EXPECT_THAT(decoder.Feed("data: x\n\n", nullptr),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("after Finish")));
  EXPECT_THAT(decoder.Finish(), IsOk());  // idempotent
}

TEST(SseDecoderTest, TruncationMessageSaysWhere) {
  EXPECT_THAT(DecodeWhole("data: abc").status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("inside a line (9 bytes")));
  EXPECT_THAT(DecodeWhole("data: abc\n").status,
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("inside an event")));
}

TEST(SseDecoderTest, DecodeSseStreamReturnsEventsOrTheError) {
  auto events = DecodeSseStream("data: a\n\ndata: b\n\n");
  ASSERT_THAT(events, IsOk());
  EXPECT_THAT(*events, ElementsAre(Ev("a"), Ev("b")));
  EXPECT_THAT(DecodeSseStream("data: a\n\ndata: b"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("line")));
}

TEST(SseDecoderTest, NullCallbackIsAllowed) {
  SseDecoder decoder;
  EXPECT_THAT(decoder.Feed("data: a\n\n", nullptr), IsOk());
  EXPECT_EQ(decoder.event_count(), 1);
}

}  // namespace
}  // namespace tiermesh::http
