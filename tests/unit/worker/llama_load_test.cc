// Parsers for /slots, /props and /metrics, and the combined load figure. Samples follow what
// the real llama-server (node-llama-cpp 3.22.1's llama.cpp) answers.
#include "services/worker/llama_load.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::worker {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

const char kSlots[] = R"([
  {"id": 0, "n_ctx": 1024, "speculative": false, "is_processing": true, "id_task": 7,
   "n_prompt_tokens": 300, "n_prompt_tokens_processed": 20, "n_prompt_tokens_cache": 280,
   "params": {"n_predict": 64}, "next_token": [{"has_next_token": true, "n_remain": 10,
   "n_decoded": 54}]},
  {"id": 1, "n_ctx": 1024, "speculative": false, "is_processing": false, "id_task": 3,
   "n_prompt_tokens": 212},
  {"id": 2, "n_ctx": 1024, "speculative": false, "is_processing": false}
])";

TEST(ParseSlotsTest, CountsBusySlotsAndCachedTokens) {
  ASSERT_OK_AND_ASSIGN(SlotsSnapshot s, ParseSlots(kSlots));
  EXPECT_EQ(s.total, 3);
  EXPECT_EQ(s.busy, 1);
  EXPECT_EQ(s.context_tokens, 3072);
  EXPECT_EQ(s.cached_tokens, 512);
}

TEST(ParseSlotsTest, RejectsMalformedBodies) {
  const std::vector<std::string> bad = {
      "",
      "{}",
      "[1]",
      R"([{"id": 0}])",
      R"([{"is_processing": "yes"}])",
      R"([{"is_processing": true, "n_ctx": -1}])",
      R"([{"is_processing": true, "n_ctx": 1.5}])",
      R"([{"is_processing": true, "n_prompt_tokens": "3"}])",
  };
  for (const std::string& body : bad) {
    EXPECT_THAT(ParseSlots(body), StatusIs(absl::StatusCode::kInternal, HasSubstr("/slots")))
        << body;
  }
  ASSERT_OK_AND_ASSIGN(SlotsSnapshot empty, ParseSlots("[]"));
  EXPECT_EQ(empty.total, 0);
}

TEST(ParsePropsTest, ReadsSlotsContextAndModel) {
  ASSERT_OK_AND_ASSIGN(PropsSnapshot p, ParseProps(R"({
    "default_generation_settings": {"id": 0, "n_ctx": 1024, "params": {}},
    "total_slots": 4, "model_alias": "tiny", "model_path": "/tmp/tiny.gguf",
    "chat_template": "{{ x }}", "build_info": "b1-de3ff81", "is_sleeping": false})"));
  EXPECT_EQ(p.total_slots, 4);
  EXPECT_EQ(p.context_per_slot, 1024);
  EXPECT_EQ(p.model_path, "/tmp/tiny.gguf");
  EXPECT_EQ(p.build_info, "b1-de3ff81");
  EXPECT_TRUE(p.has_chat_template);
}

TEST(ParsePropsTest, RejectsMalformedBodies) {
  const std::vector<std::string> bad = {
      "",
      "[]",
      "{}",
      R"({"total_slots": 0})",
      R"({"total_slots": "4"})",
      R"({"total_slots": 4, "default_generation_settings": {"n_ctx": -5}})",
  };
  for (const std::string& body : bad) {
    EXPECT_THAT(ParseProps(body), StatusIs(absl::StatusCode::kInternal, HasSubstr("/props")))
        << body;
  }
}

const char kMetrics[] =
    "# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed.\n"
    "# TYPE llamacpp:prompt_tokens_total counter\n"
    "llamacpp:prompt_tokens_total 1234\n"
    "# TYPE llamacpp:tokens_predicted_total counter\n"
    "llamacpp:tokens_predicted_total 5678\n"
    "llamacpp:n_decode_total 99\n"
    "# TYPE llamacpp:predicted_tokens_seconds gauge\n"
    "llamacpp:predicted_tokens_seconds 3456.5\n"
    "llamacpp:requests_processing 2\n"
    "llamacpp:requests_deferred 5\n"
    "llamacpp:n_busy_slots_per_decode nan\n"
    "llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 0\n";

TEST(ParseLlamaMetricsTest, ReadsTheLlamacppSeries) {
  ASSERT_OK_AND_ASSIGN(LlamaMetrics m, ParseLlamaMetrics(kMetrics));
  EXPECT_EQ(m.prompt_tokens_total, 1234);
  EXPECT_EQ(m.tokens_predicted_total, 5678);
  EXPECT_EQ(m.n_decode_total, 99);
  EXPECT_EQ(m.predicted_tokens_seconds, 3456.5);
  EXPECT_EQ(m.requests_processing, 2);
  EXPECT_EQ(m.requests_deferred, 5);
  ASSERT_OK_AND_ASSIGN(LlamaMetrics empty, ParseLlamaMetrics(""));
  EXPECT_EQ(empty.requests_deferred, 0);
}

TEST(ParsePrometheusTextTest, LabelsEscapesSpecialValuesTimestamps) {
  ASSERT_OK_AND_ASSIGN(
      std::vector<PrometheusSample> samples,
      ParsePrometheusText("a_b:c{x=\"1\",y=\"q\\\"u\\\\o\\nte\"} 1.5e3 1700000000000\r\n"
                          "  \n"
                          "inf_metric +Inf\n"
                          "neg -Inf\n"
                          "nan_metric NaN\n"
                          "empty_labels{} 7\n"
                          "trailing_comma{a=\"b\",} 8\n"));
  ASSERT_EQ(samples.size(), 6u);
  EXPECT_EQ(samples[0].name, "a_b:c");
  ASSERT_EQ(samples[0].labels.size(), 2u);
  EXPECT_EQ(samples[0].labels[1].second, "q\"u\\o\nte");
  EXPECT_EQ(samples[0].value, 1500);
  EXPECT_TRUE(std::isinf(samples[1].value));
  EXPECT_LT(samples[2].value, 0);
  EXPECT_TRUE(std::isnan(samples[3].value));
  EXPECT_EQ(samples[4].value, 7);
  EXPECT_EQ(samples[5].labels[0].first, "a");
}

TEST(ParsePrometheusTextTest, MalformedLinesNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"ok 1\n9bad 1\n", "line 2"},      {"m\n", "expected a value"},
      {"m abc\n", "bad value"},          {"m{x=1} 1\n", "expected =\""},
      {"m{x=\"1} 1\n", "unterminated"},  {"m{x=\"1\" y=\"2\"} 1\n", "expected , or }"},
      {"m 1 2 3\n", "expected a value"},
      // The bad value is quoted as valid UTF-8 (found by llama_response_fuzz).
      {"m \xFF\xC3\n", "bad value '\xEF\xBF\xBD\xEF\xBF\xBD'"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParsePrometheusText(c.text),
                StatusIs(absl::StatusCode::kInternal, HasSubstr(c.message)))
        << c.text;
  }
}

TEST(CombineLoadTest, PrefersSlotsThenPropsAndMetrics) {
  ASSERT_OK_AND_ASSIGN(SlotsSnapshot slots, ParseSlots(kSlots));
  ASSERT_OK_AND_ASSIGN(LlamaMetrics metrics, ParseLlamaMetrics(kMetrics));
  PropsSnapshot props;
  props.total_slots = 8;

  const LlamaLoad all = CombineLoad(slots, props, metrics);
  EXPECT_TRUE(all.has_slots);
  EXPECT_TRUE(all.has_metrics);
  EXPECT_EQ(all.slots_total, 3);
  EXPECT_EQ(all.slots_busy, 1);  // /slots is more direct than requests_processing
  EXPECT_EQ(all.deferred_requests, 5);
  EXPECT_FLOAT_EQ(all.kv_cache_usage_ratio, 512.0f / 3072.0f);

  const LlamaLoad no_slots = CombineLoad(absl::nullopt, props, metrics);
  EXPECT_FALSE(no_slots.has_slots);
  EXPECT_EQ(no_slots.slots_total, 8);
  EXPECT_EQ(no_slots.slots_busy, 2);
  EXPECT_EQ(no_slots.kv_cache_usage_ratio, 0);

  const LlamaLoad nothing = CombineLoad(absl::nullopt, absl::nullopt, absl::nullopt);
  EXPECT_EQ(nothing.slots_total, 0);
  EXPECT_FALSE(nothing.has_metrics);

  LlamaMetrics busy = metrics;
  busy.requests_processing = 50;  // more than the slots: clamped
  EXPECT_EQ(CombineLoad(absl::nullopt, props, busy).slots_busy, 8);
}

}  // namespace
}  // namespace tiermesh::worker
