#include "services/classifier/classifier.h"

#include <cmath>
#include <cstdlib>
#include <numeric>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/classifier/heuristic.h"
#include "services/classifier/text.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::classifier {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

ClassifyInput One(std::string_view text) {
  ClassifyInput in;
  in.messages.push_back({Role::kUser, text, 0});
  return in;
}

std::string ShippedModelPath() {
  const char* root = std::getenv("TIERMESH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/models/classifier/default.tmcl";
}

struct ValidateCase {
  std::string name;
  std::vector<std::string> messages;
  size_t limit;
  absl::StatusCode code;
  std::string message;
};

class ValidateTest : public ::testing::TestWithParam<ValidateCase> {};

TEST_P(ValidateTest, ClearErrors) {
  const ValidateCase& c = GetParam();
  ClassifyInput in;
  for (const std::string& m : c.messages) in.messages.push_back({Role::kUser, m, 0});
  const absl::Status s = ValidateInput(in, c.limit);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Table, ValidateTest,
    ::testing::Values(
        ValidateCase{"no_messages", {}, 100, absl::StatusCode::kInvalidArgument, "no messages"},
        ValidateCase{"empty", {""}, 100, absl::StatusCode::kInvalidArgument, "empty"},
        ValidateCase{"whitespace", {" \n\t", ""}, 100, absl::StatusCode::kInvalidArgument, "empty"},
        ValidateCase{"oversized",
                     {std::string(101, 'a')},
                     100,
                     absl::StatusCode::kInvalidArgument,
                     "over the limit of 100 bytes"},
        ValidateCase{"at_limit", {std::string(100, 'a')}, 100, absl::StatusCode::kOk, ""},
        ValidateCase{"one_blank_one_text", {"", "hi"}, 100, absl::StatusCode::kOk, ""}),
    [](const ::testing::TestParamInfo<ValidateCase>& param_info) { return param_info.param.name; });

TEST(ValidateTest, ToolsCountTowardsTheLimit) {
  ClassifyInput in = One("hi");
  const std::string schema(200, 'x');
  in.tools.push_back({"t", "d", schema});
  EXPECT_THAT(ValidateInput(in, 100), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

struct HeuristicCase {
  std::string name;
  std::string text;
  bool tools;
  TaskType task;
  float complexity;
};

class HeuristicTest : public ::testing::TestWithParam<HeuristicCase> {};

TEST_P(HeuristicTest, FollowsTheIssueRules) {
  const HeuristicCase& c = GetParam();
  ClassifyInput in = One(c.text);
  if (c.tools) in.tools.push_back({"f", "", ""});
  const HeuristicVerdict v = ClassifyHeuristic(in);
  EXPECT_EQ(v.task, c.task);
  EXPECT_NEAR(v.complexity, c.complexity, 1e-6);
  EXPECT_NEAR(std::accumulate(v.probabilities.begin(), v.probabilities.end(), 0.0f), 1.0f, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HeuristicTest,
    ::testing::Values(
        HeuristicCase{"plain", "tell me a joke", false, TaskType::kChat, 0},
        HeuristicCase{"tool_word", "What's the weather in Oslo?", false, TaskType::kTool, 0},
        HeuristicCase{"tools_offered", "tell me a joke", true, TaskType::kTool, 0},
        HeuristicCase{"whole_words_only", "I know the snowfall", false, TaskType::kChat, 0},
        HeuristicCase{"math", "calculate 2+2", false, TaskType::kMath, 0.3f},
        HeuristicCase{"reasoning", "why is the sky blue", false, TaskType::kReasoning, 0.4f},
        HeuristicCase{"trade_off", "explain the trade-off", false, TaskType::kReasoning, 0.4f},
        HeuristicCase{"questions", "a? b?", false, TaskType::kChat, 0.2f},
        HeuristicCase{"newlines", "a\nb\nc\nd\ne", false, TaskType::kChat, 0.2f},
        HeuristicCase{"long", std::string(501, 'x'), false, TaskType::kChat, 0.2f},
        HeuristicCase{"capped", std::string(501, 'x') + " why math? now?", false, TaskType::kTool,
                      1.0f}),
    [](const ::testing::TestParamInfo<HeuristicCase>& param_info) {
      return param_info.param.name;
    });

TEST(ClassifierTest, HeuristicModeEndToEnd) {
  const Classifier classifier({ClassifierMode::kHeuristic, kDefaultMaxRequestBytes, 5}, nullptr);
  ASSERT_OK_AND_ASSIGN(const Classification c,
                       classifier.Classify(One("Search the news for today; mail me at a@b.io")));
  EXPECT_EQ(c.task, TaskType::kTool);
  EXPECT_EQ(c.model_version, "heuristic");
  EXPECT_TRUE(c.pii_detected);
  EXPECT_THAT(c.pii_kinds, ElementsAre("email"));
  EXPECT_GT(c.approx_tokens, 5);
  EXPECT_THAT(c.reasons,
              Contains(::testing::Field(&Reason::feature, "heuristic:tool_word:search")));
  EXPECT_THAT(classifier.Classify(ClassifyInput{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no messages")));
}

TEST(ClassifierTest, LearnedModeWithoutModelIsAnError) {
  const Classifier classifier({}, nullptr);
  EXPECT_THAT(classifier.Classify(One("hi")),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
}

TEST(ClassifierModeTest, Names) {
  EXPECT_EQ(ClassifierModeFromName("learned"), ClassifierMode::kLearned);
  EXPECT_EQ(ClassifierModeFromName("heuristic"), ClassifierMode::kHeuristic);
  EXPECT_EQ(ClassifierModeFromName("Learned"), std::nullopt);
  EXPECT_EQ(ClassifierModeName(ClassifierMode::kHeuristic), "heuristic");
}

// End to end with the model that ships in the repository.
class ShippedModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<ModelStore>> store = ModelStore::Open(ShippedModelPath());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::shared_ptr<ModelStore>(std::move(*store));
  }
  static void TearDownTestSuite() { store_.reset(); }

  Classification Classify(const ClassifyInput& in) {
    const Classifier classifier({}, store_);
    absl::StatusOr<Classification> c = classifier.Classify(in);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *c : Classification{};
  }

  static std::shared_ptr<ModelStore> store_;
};
std::shared_ptr<ModelStore> ShippedModelTest::store_;

struct TaskCase {
  std::string name;
  std::string text;
  bool tools;
  TaskType task;
};

class ShippedModelTaskTest : public ShippedModelTest,
                             public ::testing::WithParamInterface<TaskCase> {};

TEST_P(ShippedModelTaskTest, PredictsTheTask) {
  const TaskCase& t = GetParam();
  ClassifyInput in = One(t.text);
  if (t.tools) {
    in.tools.push_back({"get_weather", "Current weather for a city", R"({"type":"object"})"});
  }
  const Classification c = Classify(in);
  EXPECT_EQ(TaskName(c.task), TaskName(t.task)) << t.text;
}

INSTANTIATE_TEST_SUITE_P(
    Prompts, ShippedModelTaskTest,
    ::testing::Values(
        TaskCase{"weather_with_tools", "What's the weather like in Berlin right now?", true,
                 TaskType::kTool},
        TaskCase{"weather_without_tools", "Will it rain in Seattle tomorrow?", false,
                 TaskType::kTool},
        TaskCase{"code", "Write a Python function that reverses a linked list.", false,
                 TaskType::kCode},
        TaskCase{"code_fence", "Why does this crash?\n```c\nint *p = NULL;\n*p = 3;\n```", false,
                 TaskType::kCode},
        TaskCase{"math", "Solve for x: 3x + 7 = 25.", false, TaskType::kMath},
        TaskCase{"chat", "Write a short poem about the autumn leaves.", false, TaskType::kChat},
        TaskCase{"small_talk", "hi, how are you doing today?", false, TaskType::kChat}),
    [](const ::testing::TestParamInfo<TaskCase>& param_info) { return param_info.param.name; });

TEST_F(ShippedModelTest, VerdictIsWellFormed) {
  const Classification c = Classify(One("Compare the trade-offs of microservices and a monolith."));
  EXPECT_NEAR(std::accumulate(c.probabilities.begin(), c.probabilities.end(), 0.0f), 1.0f, 1e-5);
  EXPECT_FLOAT_EQ(c.confidence, c.probabilities[TaskIndex(c.task)]);
  EXPECT_GE(c.complexity, 0.0f);
  EXPECT_LE(c.complexity, 1.0f);
  EXPECT_THAT(c.model_version, StartsWith("default.tmcl@"));
  ASSERT_FALSE(c.reasons.empty());
  EXPECT_LE(c.reasons.size(), 7u);
  for (size_t i = 1; i < c.reasons.size(); ++i) {
    EXPECT_GE(std::fabs(c.reasons[i - 1].weight), std::fabs(c.reasons[i].weight));
  }
  EXPECT_FALSE(c.pii_detected);
  EXPECT_THAT(c.pii_kinds, IsEmpty());
}

TEST_F(ShippedModelTest, ToolsOfferedIsAReason) {
  ClassifyInput in = One("Please look it up for me.");
  in.tools.push_back({"lookup", "Look up a record", ""});
  const Classification c = Classify(in);
  EXPECT_EQ(c.task, TaskType::kTool);
  EXPECT_THAT(c.reasons, Contains(::testing::Field(&Reason::feature, "tools_offered")));
}

TEST_F(ShippedModelTest, PiiIsFlaggedWithoutTheData) {
  const Classification c =
      Classify(One("Send the invoice to jane@example.com, card 4111 1111 1111 1111"));
  EXPECT_TRUE(c.pii_detected);
  EXPECT_THAT(c.pii_kinds, ElementsAre("email", "card"));
  for (const Reason& r : c.reasons) {
    EXPECT_THAT(r.feature, ::testing::Not(HasSubstr("4111")));
    EXPECT_THAT(r.feature, ::testing::Not(HasSubstr("jane")));
  }
}

TEST_F(ShippedModelTest, TurnsAndLongContextsRaiseComplexity) {
  const std::string question = "And what about the second case?";
  const Classification single = Classify(One(question));
  ClassifyInput multi;
  std::string context;
  while (context.size() < 6000) context += "The service stores orders and ships them daily. ";
  const std::string document = "Here is my design document: " + context;  // outlives the views
  multi.messages = {{Role::kUser, document},
                    {Role::kAssistant, "Thanks, I read it."},
                    {Role::kUser, "What are the risks?"},
                    {Role::kAssistant, "Mainly latency."},
                    {Role::kUser, question}};
  const Classification conversation = Classify(multi);
  EXPECT_GT(conversation.complexity, single.complexity);
}

TEST_F(ShippedModelTest, InvalidUtf8AndOddInputNeverCrash) {
  for (const std::string& text :
       {std::string("\xFF\xFE\xFD garbage \xC3"), std::string("\xE5\xA4"), std::string(200000, 'a'),
        std::string("\0\0\0", 3), std::string("```\n```\n```"), std::string("????????")}) {
    const Classification c = Classify(One(text));
    EXPECT_NE(c.task, TaskType::kUnspecified);
    for (const Reason& r : c.reasons) EXPECT_TRUE(IsValidUtf8(r.feature));
  }
}

TEST_F(ShippedModelTest, NoReasonsWhenNotAsked) {
  const Classification c = ClassifyWithModel(*store_->current(), One("hello there"), 0);
  EXPECT_THAT(c.reasons, IsEmpty());
}

}  // namespace
}  // namespace tiermesh::classifier
