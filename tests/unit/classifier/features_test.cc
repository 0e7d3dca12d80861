#include "services/classifier/features.h"

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/classifier/text.h"

namespace tiermesh::classifier {
namespace {

constexpr uint32_t kExpectedWeatherBucket = 42391;  // golden, see HashingIsStable

using ::testing::Contains;
using ::testing::FloatNear;
using ::testing::Not;

class FeaturesTest : public ::testing::Test {
 protected:
  FeatureExtractor extractor_{FeatureConfig{}};

  float Structural(const FeatureVector& fv, Structural f) const {
    const uint32_t index = extractor_.config().num_buckets() + static_cast<uint32_t>(f);
    for (const Feature& feature : fv.features) {
      if (feature.index == index) return feature.value;
    }
    return 0;
  }
  std::vector<std::string> Names(const FeatureVector& fv) const {
    std::vector<std::string> names;
    for (size_t i = 0; i < fv.features.size(); ++i) names.push_back(extractor_.FeatureName(fv, i));
    return names;
  }
  FeatureVector Extract(std::vector<MessageView> messages, std::vector<ToolView> tools = {}) {
    ClassifyInput input;
    input.messages = std::move(messages);
    input.tools = std::move(tools);
    return extractor_.Extract(input);
  }
};

// The last non-space character decides ends_with_question: trailing ASCII
// whitespace is skipped, the full-width question mark counts, a cut one or a
// question mark followed by more text does not.
TEST_F(FeaturesTest, EndsWithQuestion) {
  const struct {
    std::string text;
    bool expected;
  } cases[] = {
      {"Why is the sky blue?", true},
      {"Why is the sky blue?  \t\r\n \n", true},
      {"\xE3\x81\xAA\xE3\x81\x9C\xEF\xBC\x9F", true},  // "なぜ？"
      {"\xE3\x81\xAA\xE3\x81\x9C\xEF\xBC\x9F\n", true},
      {"what? tell me", false},
      {"why\xEF\xBC", false},       // a cut full-width question mark
      {"why?\xE3\x80\x80", false},  // U+3000 is not ASCII whitespace
      {"a plain sentence with many words and no question", false},
      {"?", true},
      {"   ", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Structural(extractor_.ExtractText(c.text), Structural::kEndsWithQuestion),
              c.expected ? 1.0f : 0.0f)
        << c.text;
  }
}

TEST_F(FeaturesTest, NamesWordsBigramsCharsAndSymbols) {
  const FeatureVector fv = extractor_.ExtractText("What's the Weather in Paris?");
  const std::vector<std::string> names = Names(fv);
  EXPECT_THAT(names, Contains("word:weather"));  // lower-cased
  EXPECT_THAT(names, Contains("bigram:the weather"));
  EXPECT_THAT(names, Contains("chars:^wea"));
  EXPECT_THAT(names, Contains("chars:her$"));
  EXPECT_THAT(names, Contains("symbol:?"));
  EXPECT_THAT(names, Contains("bias"));
  EXPECT_THAT(names, Contains("ends_with_question"));
}

TEST_F(FeaturesTest, DigitsAreNormalised) {
  const std::vector<std::string> names = Names(extractor_.ExtractText("add 1234 and 98"));
  EXPECT_THAT(names, Contains("word:0000"));
  EXPECT_THAT(names, Contains("word:00"));
  EXPECT_THAT(names, Not(Contains("word:1234")));
}

TEST_F(FeaturesTest, IndicesAreUniquePerTurnKindAndInRange) {
  const FeatureVector fv =
      extractor_.ExtractText("the the the cat sat on the mat, the cat sat on the mat");
  std::set<uint32_t> seen;
  for (const Feature& f : fv.features) {
    EXPECT_TRUE(seen.insert(f.index).second) << "duplicate index " << f.index;
    EXPECT_LT(f.index, extractor_.config().num_features());
  }
  EXPECT_EQ(fv.features.size(), fv.origins.size());
}

TEST_F(FeaturesTest, DistinctTokensGiveUnitNormFamilies) {
  const FeatureVector fv = extractor_.ExtractText("alpha beta gamma {x}");
  double squares[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < fv.features.size(); ++i) {
    if (fv.origins[i].kind == FeatureOrigin::kStructural) continue;
    squares[fv.origins[i].kind] += fv.features[i].value * fv.features[i].value;
  }
  for (double s : squares) EXPECT_NEAR(s, 1.0, 1e-5);
}

TEST_F(FeaturesTest, RepeatedTokensCountOverSqrtOfOccurrences) {
  // Six word occurrences: "three" appears three times -> 3 / sqrt(6).
  const FeatureVector fv = extractor_.ExtractText("one two two three three three");
  float three = 0;
  for (size_t i = 0; i < fv.features.size(); ++i) {
    if (extractor_.FeatureName(fv, i) == "word:three") three = fv.features[i].value;
  }
  EXPECT_NEAR(three, 3 / std::sqrt(6.0), 1e-5);
}

// Random weights in [-1, 1] for every feature of `config`.
std::vector<float> RandomRows(const FeatureConfig& config, uint64_t state) {
  std::vector<float> weights(size_t{config.num_features()} * ScoredRequest::kColumns);
  for (float& w : weights) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    w = static_cast<float>(static_cast<int64_t>(state >> 40) % 2001 - 1000) / 1000.0f;
  }
  return weights;
}

// The serving path (one pass, no merging) must score each input exactly like
// the merged features the trainer sees.
void ExpectScoreMatchesMergedFeatures(const FeatureExtractor& extractor,
                                      const std::vector<ClassifyInput>& inputs, uint64_t seed) {
  const std::vector<float> weights = RandomRows(extractor.config(), seed);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const FeatureVector fv = extractor.Extract(inputs[i]);
    std::array<double, ScoredRequest::kColumns> expected{};
    for (const Feature& f : fv.features) {
      for (int c = 0; c < ScoredRequest::kColumns; ++c) {
        expected[c] += weights[size_t{f.index} * ScoredRequest::kColumns + c] * f.value;
      }
    }
    ScoredRequest scored;
    extractor.Score(inputs[i], weights.data(), &scored);
    for (int c = 0; c < ScoredRequest::kColumns; ++c) {
      EXPECT_NEAR(scored.totals[c], expected[c], 1e-3 * (1 + std::fabs(expected[c])))
          << "input " << i << " column " << c;
    }
    EXPECT_EQ(scored.stats.approx_tokens, fv.stats.approx_tokens) << "input " << i;
    EXPECT_EQ(scored.text, fv.text) << "input " << i;
  }
}

TEST_F(FeaturesTest, SinglePassScoreEqualsMergedFeatures) {
  std::string long_text;
  while (long_text.size() < 40000) long_text += "lorem ipsum 42 + 7 = 49, dolor? ";
  const std::vector<ClassifyInput> inputs = {
      ClassifyInput{{{Role::kUser, "What's the weather in Paris today?"}}, {}},
      ClassifyInput{{{Role::kSystem, "You are terse."},
                     {Role::kUser, "write a python function"},
                     {Role::kAssistant, "def f(): pass"},
                     {Role::kUser, "now add type hints and tests tests tests"}},
                    {{"run", "runs code", "{}"}}},
      ClassifyInput{
          {{Role::kUser, "caf\xC3\xA9 \xFF\xFE \xE5\xA4\xA9\xE6\xB0\x94 \xF0\x9F\x98\x80 ok"}}, {}},
      ClassifyInput{{{Role::kUser, long_text}}, {}},
      ClassifyInput{{}, {}},
  };
  ExpectScoreMatchesMergedFeatures(extractor_, inputs, 99);
}

// The serving path scores character n-grams without building their origins;
// with every n-gram size, long tokens (words longer than the local buffer),
// context turns and, in 2^12 buckets, many collisions between families, it
// must still score like the merged features.
TEST(FeaturesScoreTest, CharNgramFastPathScoresLikeMergedFeatures) {
  FeatureConfig config;
  config.hash_bits = 12;
  config.char_ngram_min = 2;
  config.char_ngram_max = 7;
  const FeatureExtractor extractor(config);
  std::string long_token;
  for (int i = 0; long_token.size() < 300; ++i) long_token += static_cast<char>('a' + i % 26);
  const std::string mid_token(66, 'x');  // 68 bytes padded: just past the local buffer
  // MessageView holds string_views: the texts must outlive the inputs.
  const std::string focus = "see " + long_token + " and " + mid_token + " ok";
  const std::string earlier = "earlier " + long_token;
  const std::vector<ClassifyInput> inputs = {
      ClassifyInput{{{Role::kUser, focus}}, {}},
      ClassifyInput{{{Role::kUser, earlier},
                     {Role::kAssistant, "fine"},
                     {Role::kUser, "a bb ccc dddd eeeee ffffff ggggggg"}},
                    {}},
  };
  ExpectScoreMatchesMergedFeatures(extractor, inputs, 7);
}

TEST_F(FeaturesTest, HashingIsStable) {
  // Shipped model files depend on these exact buckets: a change here must
  // bump kFeatureVersion and retrain the default model.
  const FeatureVector fv = extractor_.ExtractText("weather");
  ASSERT_GE(fv.features.size(), 1u);
  EXPECT_EQ(extractor_.FeatureName(fv, 0), "word:weather");
  EXPECT_EQ(fv.features[0].index, kExpectedWeatherBucket);
}

struct StructuralCase {
  std::string name;
  std::string text;
  Structural feature;
  float expected;
};

class StructuralTest : public FeaturesTest, public ::testing::WithParamInterface<StructuralCase> {};

TEST_P(StructuralTest, Value) {
  const StructuralCase& c = GetParam();
  EXPECT_THAT(Structural(extractor_.ExtractText(c.text), c.feature), FloatNear(c.expected, 1e-4))
      << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Table, StructuralTest,
    ::testing::Values(
        StructuralCase{"bias", "hi", Structural::kBias, 1},
        StructuralCase{"code_fence", "fix this:\n```py\nx = 1\n```", Structural::kCodeFence, 1},
        StructuralCase{"no_code_fence", "fix this", Structural::kCodeFence, 0},
        StructuralCase{"inline_code", "what does `ls -la` do", Structural::kInlineCode, 1},
        StructuralCase{"equation", "what is 12 * 7", Structural::kEquation, 1},
        StructuralCase{"no_equation", "route 66 is long", Structural::kEquation, 0},
        StructuralCase{"questions", "why? how? what?", Structural::kQuestionsLog,
                       static_cast<float>(std::log1p(3.0) / 2)},
        StructuralCase{"multi_question", "why? how?", Structural::kMultiQuestion, 1},
        StructuralCase{"single_question", "why?", Structural::kMultiQuestion, 0},
        StructuralCase{"list_markers", "todo:\n- eggs\n- milk\n1. bread", Structural::kListMarkers,
                       static_cast<float>(std::log1p(3.0) / 2)},
        StructuralCase{"url", "summarise https://example.org/a", Structural::kUrl, 1},
        StructuralCase{"han_script", "\xE5\x8C\x97\xE4\xBA\xAC\xE5\xA4\xA9\xE6\xB0\x94",
                       Structural::kScriptLast, 1},
        StructuralCase{"cyrillic_script", "\xD0\xBF\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
                       static_cast<Structural>(static_cast<uint32_t>(Structural::kScriptLatin) + 1),
                       1},
        StructuralCase{"english", "what is the capital of France", Structural::kLangEn, 1},
        StructuralCase{"spanish",
                       "hola, \xC2\xBFqu\xC3\xA9 tiempo hace en Madrid para el fin de semana?",
                       Structural::kLangEs, 1},
        StructuralCase{"german", "wie ist das Wetter in Berlin und was soll ich anziehen",
                       Structural::kLangDe, 1},
        StructuralCase{"no_language_for_code", "x=1;y=2", Structural::kLangEn, 0}),
    [](const ::testing::TestParamInfo<StructuralCase>& param_info) {
      return param_info.param.name;
    });

TEST_F(FeaturesTest, ConversationStructure) {
  const FeatureVector fv = Extract({{Role::kSystem, "You are helpful."},
                                    {Role::kUser, "first question"},
                                    {Role::kAssistant, "an answer", 1},
                                    {Role::kTool, "{\"temp\": 21}"},
                                    {Role::kUser, "second question"},
                                    {Role::kUser, "third question"}},
                                   {{"get_weather", "Current weather for a city", "{}"}});
  EXPECT_EQ(fv.stats.user_turns, 3);
  EXPECT_FLOAT_EQ(Structural(fv, Structural::kTurnsLog), static_cast<float>(std::log1p(2.0) / 2));
  EXPECT_FLOAT_EQ(Structural(fv, Structural::kHasSystem), 1);
  EXPECT_FLOAT_EQ(Structural(fv, Structural::kHasToolCalls), 1);
  EXPECT_FLOAT_EQ(Structural(fv, Structural::kToolsOffered), 1);
  EXPECT_GT(Structural(fv, Structural::kContextLenLog), 0);
  EXPECT_GT(fv.stats.approx_tokens, 20);
  // The focus (last user turn) and the context (earlier user/system turns)
  // are normalised apart; the context is further weighted by 0.5, so a long
  // history never dilutes the current turn. Focus words: third, question (2);
  // context words: you, are, helpful, first, question, second, question (7).
  float first = 0, third = 0;
  for (size_t i = 0; i < fv.features.size(); ++i) {
    const std::string name = extractor_.FeatureName(fv, i);
    if (name == "word:first") first = fv.features[i].value;
    if (name == "word:third") third = fv.features[i].value;
  }
  EXPECT_NEAR(third, 1 / std::sqrt(2.0), 1e-6);
  EXPECT_NEAR(first, 0.5 / std::sqrt(7.0), 1e-6);
  // Assistant and tool turns add no n-grams.
  EXPECT_THAT(Names(fv), Not(Contains("word:answer")));
}

TEST_F(FeaturesTest, EmptyInputGivesOnlyBias) {
  const FeatureVector fv = Extract({});
  ASSERT_EQ(fv.features.size(), 1u);
  EXPECT_EQ(extractor_.FeatureName(fv, 0), "bias");
}

TEST_F(FeaturesTest, InvalidUtf8NeverCrashesAndNamesAreValid) {
  uint64_t state = 7;
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const int length = static_cast<int>(state % 200);
    for (int i = 0; i < length; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text.push_back(static_cast<char>(state >> 56));
    }
    const FeatureVector fv = extractor_.ExtractText(text);
    for (size_t i = 0; i < fv.features.size(); ++i) {
      ASSERT_TRUE(IsValidUtf8(extractor_.FeatureName(fv, i)));
      ASSERT_TRUE(std::isfinite(fv.features[i].value));
    }
  }
}

TEST_F(FeaturesTest, TruncatedMultibyteCharacters) {
  for (const char* text : {"\xE5", "\xE5\xA4", "ab\xF0\x9F\x98", "\xC3", "x\xED\xA0\x80y"}) {
    const FeatureVector fv = extractor_.ExtractText(text);
    EXPECT_GE(fv.features.size(), 1u) << text;
  }
}

TEST_F(FeaturesTest, VeryLongMessageIsBounded) {
  std::string text;
  for (int i = 0; text.size() < (1u << 20); ++i) text += "token" + std::to_string(i % 9973) + " ";
  const FeatureVector fv = extractor_.ExtractText(text);
  // Only head + tail bytes feed the hashed features...
  EXPECT_LT(fv.text.size(),
            size_t{extractor_.config().head_bytes} + extractor_.config().tail_bytes + 16);
  // ...but the structural features see the whole text.
  EXPECT_EQ(fv.stats.focus_bytes, static_cast<int64_t>(text.size()));
}

TEST(FeatureConfigTest, Validate) {
  EXPECT_TRUE(FeatureConfig{}.Validate().ok());
  FeatureConfig c;
  c.hash_bits = 30;
  EXPECT_FALSE(c.Validate().ok());
  c = FeatureConfig{};
  c.char_ngram_min = 5;
  c.char_ngram_max = 3;
  EXPECT_FALSE(c.Validate().ok());
  c = FeatureConfig{};
  c.char_ngram_min = 0;
  EXPECT_TRUE(c.Validate().ok());
  c.context_weight = 2;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(StructuralNamesTest, OneNamePerFeature) {
  const std::vector<std::string> names = StructuralNames();
  EXPECT_EQ(names.size(), kNumStructural);
  EXPECT_EQ(names[static_cast<uint32_t>(Structural::kToolsOffered)], "tools_offered");
  EXPECT_EQ(names[static_cast<uint32_t>(Structural::kLangIt)], "lang:it");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
}

}  // namespace
}  // namespace tiermesh::classifier
