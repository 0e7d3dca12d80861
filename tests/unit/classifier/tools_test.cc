// Tests of the classifier tools' libraries: metrics, fitting, request JSON,
// dataset readers and the trainer on a small fixture.
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/classifier/model.h"
#include "services/common/status/status_matchers.h"
#include "tools/classifier/dataset.h"
#include "tools/classifier/evaluation.h"
#include "tools/classifier/request_json.h"
#include "tools/classifier/trainer.h"
#include "tools/classifier/training.h"

namespace tiermesh::classifier {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;
using json = nlohmann::json;

std::string TestData(const std::string& name) {
  const char* root = std::getenv("TIERMESH_SOURCE_DIR");
  return std::string(root != nullptr ? root : ".") + "/tests/testdata/classifier/" + name;
}

TEST(EvaluateTasksTest, PerClassMetricsAndToolRates) {
  // truth: chat, chat, tool, tool, code; predicted: chat, tool, tool, chat, code.
  const TaskReport r = EvaluateTasks({0, 0, 1, 1, 2}, {0, 1, 1, 0, 2});
  EXPECT_EQ(r.rows, 5);
  EXPECT_EQ(r.confusion[0][1], 1);
  EXPECT_DOUBLE_EQ(r.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[0].recall, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[2].f1, 1.0);
  EXPECT_EQ(r.classes_present, 3);
  EXPECT_NEAR(r.macro_f1, (0.5 + 0.5 + 1.0) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.6);
  EXPECT_DOUBLE_EQ(r.tool_recall, 0.5);
  EXPECT_NEAR(r.tool_false_positive_rate, 1.0 / 3, 1e-12);
  EXPECT_THAT(FormatTaskReport("t", r), HasSubstr("macro-F1 0.667"));
  EXPECT_EQ(TaskReportJson(r)["per_class"]["code"]["support"], 1);
}

TEST(EvaluateRoutingTest, OracleRandomAndTies) {
  // Two prompts where only the strong model succeeds, two where both do.
  const std::vector<double> weak = {0, 1, 0, 1};
  const std::vector<double> strong = {1, 1, 1, 1};
  const std::vector<int> needs = {1, 0, 1, 0};
  const RoutingReport oracle = EvaluateRouting({0.9, 0.1, 0.8, 0.2}, weak, strong, needs);
  EXPECT_DOUBLE_EQ(oracle.quality_weak, 0.5);
  EXPECT_DOUBLE_EQ(oracle.quality_strong, 1.0);
  EXPECT_DOUBLE_EQ(oracle.roc_auc, 1.0);
  EXPECT_DOUBLE_EQ(oracle.pgr_at_50, 1.0);
  EXPECT_NEAR(oracle.apgr, 0.75, 1e-12);  // curve rises to 1 at 50%, then flat
  // Constant scores are routed in random order: exactly the random baseline.
  const RoutingReport constant = EvaluateRouting({0.5, 0.5, 0.5, 0.5}, weak, strong, needs);
  EXPECT_NEAR(constant.apgr, 0.5, 1e-12);
  EXPECT_NEAR(constant.roc_auc, 0.5, 1e-12);
  const RoutingReport inverted = EvaluateRouting({0.1, 0.9, 0.2, 0.8}, weak, strong, needs);
  EXPECT_DOUBLE_EQ(inverted.roc_auc, 0.0);
  EXPECT_LT(inverted.apgr, 0.5);
}

TEST(TrainingTest, StableFractionAndSplitMix) {
  const double a = StableFraction("hello", 1);
  EXPECT_EQ(a, StableFraction("hello", 1));
  EXPECT_NE(a, StableFraction("hello", 2));
  EXPECT_GE(a, 0.0);
  EXPECT_LT(a, 1.0);
  SplitMix64 x(5), y(5);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(x.Next(), y.Next());
}

TEST(TrainingTest, FitPlattRecoversAKnownMapping) {
  std::vector<double> scores;
  std::vector<int> labels;
  SplitMix64 rng(3);
  for (int i = 0; i < 20000; ++i) {
    const double s = static_cast<double>(rng.Below(2001)) / 250.0 - 4.0;
    const double p = 1 / (1 + std::exp(-(2.0 * s - 1.0)));
    scores.push_back(s);
    labels.push_back(static_cast<double>(rng.Below(1000000)) / 1e6 < p ? 1 : 0);
  }
  const Platt platt = FitPlatt(scores, labels);
  EXPECT_NEAR(platt.a, 2.0, 0.15);
  EXPECT_NEAR(platt.b, -1.0, 0.15);
  const Platt degenerate = FitPlatt({1, 2}, {1, 1});
  EXPECT_EQ(degenerate.a, 1);
  EXPECT_EQ(degenerate.b, 0);
}

TEST(TrainingTest, SoftmaxSeparatesSeparableData) {
  constexpr uint32_t kRows = 8;
  std::vector<float> weights(kRows * kWeightStride, 0.0f);
  std::vector<SparseExample> data;
  for (int k = 0; k < 50; ++k) {
    for (int c = 0; c < kNumTasks; ++c) data.push_back({{{static_cast<uint32_t>(c), 1.0f}}, c, 1});
  }
  TrainSoftmax(data, SgdOptions{20, 0.5, 1e-6, 1, {}}, 7, &weights);
  for (int c = 0; c < kNumTasks; ++c) {
    int best = 0;
    for (int k = 1; k < kNumTasks; ++k) {
      if (weights[c * kWeightStride + k] > weights[c * kWeightStride + best]) best = k;
    }
    EXPECT_EQ(best, c);
  }
}

TEST(RequestJsonTest, ParsesTextMessagesAndTools) {
  ASSERT_OK_AND_ASSIGN(OwnedRequest a, ParseRequest(json::parse(R"({"id": 7, "text": "hi"})")));
  EXPECT_EQ(a.id, "7");
  ASSERT_EQ(a.messages.size(), 1u);
  EXPECT_EQ(a.messages[0].content, "hi");
  ASSERT_OK_AND_ASSIGN(OwnedRequest b, ParseRequest(json::parse(R"({"messages": [
          {"role": "developer", "content": "be brief"},
          {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url"},
                                       {"type": "text", "text": "b"}]},
          {"role": "assistant", "content": null, "tool_calls": [{"id": "1"}]}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d",
                   "parameters": {"type": "object"}}}, {"name": "g"}]})")));
  ASSERT_EQ(b.messages.size(), 3u);
  EXPECT_EQ(b.messages[0].role, Role::kSystem);
  EXPECT_EQ(b.messages[1].content, "a\nb");
  EXPECT_EQ(b.messages[2].tool_calls, 1);
  ASSERT_EQ(b.tools.size(), 2u);
  EXPECT_EQ(b.tools[0].parameters_json_schema, R"({"type":"object"})");
  EXPECT_EQ(b.View().tools[1].name, "g");
}

TEST(RequestJsonTest, ClearErrors) {
  EXPECT_THAT(ParseRequest(json::parse("[]")),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(ParseRequest(json::parse(R"({"id": "x"})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neither")));
  EXPECT_THAT(ParseRequest(json::parse(R"({"text": "a", "messages": []})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not both")));
  EXPECT_THAT(ParseRequest(json::parse(R"({"text": 3})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("`text`")));
  EXPECT_THAT(ParseRequest(json::parse(R"({"messages": [{"role": "robot", "content": "x"}]})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("robot")));
  EXPECT_THAT(ParseRequest(json::parse(R"({"text": "a", "tools": [{"description": "x"}]})")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name")));
}

TEST(DatasetTest, NormalizeAndKeys) {
  EXPECT_EQ(NormalizeForDedup("  Hello,   WORLD!! "), "hello world");
  EXPECT_EQ(TextKey("abc"), "ba7816bf8f01cfea");
}

TEST(DatasetTest, LabelFile) {
  ASSERT_OK_AND_ASSIGN(auto labels,
                       ParseLabelFile("# comment\ncode\tba7816bf8f01cfea\tabc\n", "f.tsv"));
  EXPECT_EQ(labels.at("ba7816bf8f01cfea"), "code");
  EXPECT_THAT(ParseLabelFile("poetry\tba7816bf8f01cfea\n", "f.tsv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("f.tsv: line 1")));
  EXPECT_THAT(ParseLabelFile("code\tshort\n", "f.tsv"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("16 hex")));
}

TEST(DatasetTest, ClincMapsIntentsAndCaps) {
  const std::string data =
      R"({"train": [["what's the weather", "weather"], ["hi there", "greeting"],
      ["what is 2 plus 2", "calculator"], ["yes", "yes"], ["will it snow", "weather"]],
      "val": [], "test": [["hello", "greeting"]]})";
  ClincOptions options;
  options.cap_tool = 1;
  ASSERT_OK_AND_ASSIGN(std::vector<LabeledRow> rows, ReadClinc(data, options));
  std::map<std::string, int> labels;
  for (const LabeledRow& r : rows) {
    ++labels[r.label];
    EXPECT_EQ(r.license, "CC BY 3.0");
  }
  EXPECT_EQ(labels["chat"], 2);
  EXPECT_EQ(labels["tool"], 1);  // capped
  EXPECT_EQ(labels["math"], 1);
  EXPECT_EQ(ClincIntentLabel("yes"), "");
  EXPECT_EQ(ClincIntentLabel("pay_bill"), "tool");
  EXPECT_THAT(ReadClinc("{", options), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(DatasetTest, EvaluationSourcesAndMappings) {
  ASSERT_OK_AND_ASSIGN(
      std::vector<LabeledRow> mt,
      ReadMtBench(R"({"question_id": 1, "category": "coding", "turns": ["write code", "more"]})"
                  "\n"));
  ASSERT_EQ(mt.size(), 1u);
  EXPECT_EQ(mt[0].label, "code");
  EXPECT_EQ(MtBenchCategoryLabel("stem"), "reasoning");
  EXPECT_THAT(ReadMtBench(R"({"category": "poetry", "turns": ["x"]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  ASSERT_OK_AND_ASSIGN(
      std::vector<LabeledRow> bfcl,
      ReadBfcl(R"({"id": "a", "question": [[{"role": "user", "content": "weather in Rome?"}]],)"
               R"( "function": [{"name": "get_weather", "description": "d", "parameters": {}}]})",
               "live_simple"));
  ASSERT_EQ(bfcl.size(), 1u);
  EXPECT_EQ(bfcl[0].label, "tool");
  ASSERT_EQ(bfcl[0].request.tools.size(), 1u);
  EXPECT_EQ(bfcl[0].request.tools[0].name, "get_weather");
  EXPECT_EQ(BbhTaskLabel("object_counting"), "math");
  EXPECT_EQ(BbhTaskLabel("snarks"), "");
  EXPECT_EQ(MmluSubjectLabel("formal_logic"), "reasoning");
}

TEST(DatasetTest, BfclIrrelevanceIsLabelledByContentWithoutTheOfferedFunctions) {
  const std::string file =
      R"({"id": "a", "question": [[{"role": "system", "content": "be brief"},)"
      R"( {"role": "user", "content": "What is 2+2?"}]],)"
      R"( "function": [{"name": "get_weather", "description": "d", "parameters": {}}]})"
      "\n"
      R"({"id": "b", "question": [[{"role": "user", "content": "/"}]], "function": []})"
      "\n";
  const std::map<std::string, std::string> labels = {{TextKey("What is 2+2?"), "math"},
                                                     {TextKey("/"), "skip"}};
  ASSERT_OK_AND_ASSIGN(std::vector<LabeledRow> rows,
                       ReadBfclIrrelevance(file, "irrelevance", labels));
  ASSERT_EQ(rows.size(), 1u);  // "/" skipped
  EXPECT_EQ(rows[0].label, "math");
  EXPECT_EQ(rows[0].source, "bfcl_irrelevance");
  EXPECT_EQ(rows[0].group, "irrelevance");
  EXPECT_TRUE(rows[0].request.tools.empty());
  ASSERT_EQ(rows[0].request.messages.size(), 1u);  // the labelled user message only
  EXPECT_EQ(rows[0].request.messages[0].content, "What is 2+2?");
  // Every row needs a label: a gap in the label file is an error, not a silent default.
  EXPECT_THAT(ReadBfclIrrelevance(file, "irrelevance", {{TextKey("/"), "skip"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no label")));
}

TEST(DatasetTest, BuilderDeduplicatesAndKeepsEvaluationOutOfSample) {
  const auto row = [](std::string text, std::string source) {
    LabeledRow r;
    r.request.messages.push_back({Role::kUser, std::move(text), 0});
    r.label = "chat";
    r.source = std::move(source);
    r.license = "MIT";
    return r;
  };
  DatasetBuilder b;
  b.AddTraining({row("Hello there!", "a"), row("hello, there", "a"), row("other", "a")});
  b.AddEvaluation({row("HELLO THERE", "e"), row("new prompt", "e"), row("new prompt", "e")});
  EXPECT_EQ(b.training().size(), 2u);
  EXPECT_EQ(b.evaluation().size(), 1u);
  EXPECT_EQ(b.evaluation_overlaps_dropped(), 1);
  EXPECT_EQ(b.duplicates_dropped(), 2);
}

TEST(TrainerTest, LicencePolicy) {
  const std::set<std::string>& ok = DefaultPermittedLicenses();
  EXPECT_TRUE(LicensePermitted("MIT", ok));
  EXPECT_TRUE(LicensePermitted("MIT; labels Apache-2.0", ok));
  EXPECT_TRUE(LicensePermitted("CC BY 3.0", ok));
  EXPECT_FALSE(LicensePermitted("CC BY-NC 4.0", ok));
  EXPECT_FALSE(LicensePermitted("MIT; labels proprietary", ok));
  EXPECT_FALSE(LicensePermitted("", ok));
}

TrainerOptions FixtureOptions() {
  TrainerOptions o;
  o.task_data = TestData("task_small.jsonl");
  o.complexity_data = TestData("complexity_small.jsonl");
  o.features.hash_bits = 12;
  o.heldout_fraction = 0.25;
  o.task_sgd.epochs = 8;
  o.created_by = "tools_test";
  return o;
}

TEST(TrainerTest, TrainsOnAFixtureDeterministically) {
  ASSERT_OK_AND_ASSIGN(const TrainerResult first, TrainClassifier(FixtureOptions()));
  EXPECT_EQ(first.params.features.hash_bits, 12u);
  EXPECT_EQ(first.params.info.created_by, "tools_test");
  EXPECT_EQ(first.params.info.data_sha256.size(), 64u);
  ASSERT_EQ(first.params.info.sources.size(), 2u);
  EXPECT_EQ(first.params.info.sources[0].name, "fixture");
  EXPECT_EQ(first.params.info.sources[0].role, "task");
  EXPECT_EQ(first.params.info.sources[1].license, "MIT; labels Apache-2.0");
  EXPECT_THAT(first.text_report, HasSubstr("held-out split (learned)"));
  EXPECT_THAT(first.text_report, HasSubstr("APGR"));
  // The fixture is easy: the held-out split is learned, and the complexity
  // score ranks the "prove" prompts first.
  EXPECT_GT(first.report["task_heldout"]["learned"]["macro_f1"].get<double>(), 0.6);
  EXPECT_GT(first.report["complexity_test"]["learned"]["roc_auc"].get<double>(), 0.9);
  EXPECT_TRUE(json::parse(first.params.info.report_json).contains("complexity_apgr"));
  ASSERT_OK_AND_ASSIGN(const std::string bytes, SerializeModel(first.params));
  ASSERT_OK_AND_ASSIGN(const TrainerResult second, TrainClassifier(FixtureOptions()));
  ASSERT_OK_AND_ASSIGN(const std::string again, SerializeModel(second.params));
  EXPECT_EQ(bytes, again);
  ASSERT_OK_AND_ASSIGN(const ModelParams parsed, ParseModel(bytes));
  EXPECT_EQ(parsed.weights, first.params.weights);
}

TEST(TrainerTest, RefusesUnpermittedLicences) {
  TrainerOptions o = FixtureOptions();
  o.permitted_licenses = {"MIT", "Apache-2.0"};  // not CC0-1.0
  EXPECT_THAT(TrainClassifier(o),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not permitted")));
}

TEST(TrainerTest, RefusesAnEvaluationSetThatOverlapsTrainingSources) {
  TrainerOptions o = FixtureOptions();
  o.task_eval_data = TestData("task_small.jsonl");
  EXPECT_THAT(TrainClassifier(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out-of-source")));
}

TEST(TrainerTest, MissingFilesAreClearErrors) {
  TrainerOptions o = FixtureOptions();
  o.task_data = TestData("does_not_exist.jsonl");
  EXPECT_THAT(TrainClassifier(o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does_not_exist")));
}

}  // namespace
}  // namespace tiermesh::classifier
