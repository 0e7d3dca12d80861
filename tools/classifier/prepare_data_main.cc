// tiermesh-prepare-classifier-data: assembles the classifier's training and
// evaluation JSONL files from the public datasets and tiermesh's own files.
//
//   tiermesh-prepare-classifier-data --datasets ../shared/datasets/classifier
//       --data tools/classifier/data --out build/cls-data
//
// Writes task_train.jsonl, task_eval.jsonl (sources never used for training),
// complexity.jsonl (routing outcomes), complexity_eval.jsonl (MT-Bench judge
// outcomes) and MANIFEST.json (rows per source / licence / label and the
// SHA-256 of each file). The same inputs always give byte-identical outputs.
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "services/classifier/sha256.h"
#include "tools/classifier/dataset.h"
#include "tools/classifier/file_util.h"

ABSL_FLAG(std::string, datasets, "", "the datasets/classifier folder (README, sources/, routing/)");
ABSL_FLAG(std::string, data, "tools/classifier/data",
          "tiermesh's own prompts and hand labels (tools/classifier/data)");
ABSL_FLAG(std::string, out, "", "output folder (must exist)");
ABSL_FLAG(uint64_t, seed, 1, "seed of the stable per-group sampling");
ABSL_FLAG(uint32_t, clinc_chat_cap, 40, "CLINC150 rows per chat intent");
ABSL_FLAG(uint32_t, clinc_tool_cap, 12, "CLINC150 rows per tool intent");
ABSL_FLAG(uint32_t, clinc_math_cap, 80, "CLINC150 rows per math intent");
ABSL_FLAG(uint32_t, gsm8k_cap, 800, "GSM8K training questions");
ABSL_FLAG(uint32_t, bbh_cap, 20, "rows per BIG-Bench Hard task");
ABSL_FLAG(uint32_t, mmlu_cap, 15, "rows per MMLU subject with a task label");
ABSL_FLAG(uint32_t, bfcl_cap, 150, "evaluation rows per BFCL live category");

namespace tiermesh::classifier {
namespace {

using nlohmann::json;

constexpr const char* kBbhTasks[] = {"boolean_expressions",
                                     "date_understanding",
                                     "disambiguation_qa",
                                     "dyck_languages",
                                     "geometric_shapes",
                                     "hyperbaton",
                                     "logical_deduction_five_objects",
                                     "logical_deduction_three_objects",
                                     "movie_recommendation",
                                     "multistep_arithmetic_two",
                                     "object_counting",
                                     "penguins_in_a_table",
                                     "reasoning_about_colored_objects",
                                     "ruin_names",
                                     "salient_translation_error_detection",
                                     "snarks",
                                     "sports_understanding",
                                     "temporal_sequences",
                                     "tracking_shuffled_objects_five_objects",
                                     "tracking_shuffled_objects_seven_objects",
                                     "tracking_shuffled_objects_three_objects",
                                     "word_sorting"};
constexpr const char* kBfclLive[] = {"live_simple", "live_multiple", "live_parallel",
                                     "live_parallel_multiple"};

template <typename T>
absl::Status Append(absl::StatusOr<std::vector<T>> rows, std::vector<T>* out) {
  if (!rows.ok()) return rows.status();
  for (T& r : *rows) out->push_back(std::move(r));
  return absl::OkStatus();
}

json Counts(const std::vector<LabeledRow>& rows) {
  std::map<std::string, std::map<std::string, int64_t>> by_source;
  std::map<std::string, std::string> licenses;
  std::map<std::string, int64_t> by_label;
  for (const LabeledRow& r : rows) {
    ++by_source[r.source][r.label];
    licenses[r.source] = r.license;
    ++by_label[r.label];
  }
  json sources = json::object();
  for (const auto& [source, labels] : by_source) {
    sources[source] = {{"license", licenses[source]}, {"labels", labels}};
  }
  return {{"rows", rows.size()}, {"labels", by_label}, {"sources", sources}};
}

absl::Status Run() {
  const std::string datasets = absl::GetFlag(FLAGS_datasets);
  const std::string data = absl::GetFlag(FLAGS_data);
  const std::string out = absl::GetFlag(FLAGS_out);
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (datasets.empty() || out.empty()) {
    return absl::InvalidArgumentError("--datasets and --out are required");
  }
  const auto read = [&](const std::string& path) { return ReadWholeFile(path); };
  const auto src = [&](const std::string& rel) { return JoinPath(datasets, rel); };

  absl::StatusOr<std::string> text;
  std::map<std::string, std::string> metatool_labels, self_instruct_labels, irrelevance_labels;
  for (auto [name, target] :
       {std::pair{"labels/metatool_task1_negatives.tsv", &metatool_labels},
        std::pair{"labels/self_instruct_user_oriented.tsv", &self_instruct_labels},
        std::pair{"labels/bfcl_irrelevance.tsv", &irrelevance_labels}}) {
    text = read(JoinPath(data, name));
    if (!text.ok()) return text.status();
    absl::StatusOr<std::map<std::string, std::string>> labels = ParseLabelFile(*text, name);
    if (!labels.ok()) return labels.status();
    *target = *std::move(labels);
  }

  // Training sources.
  std::vector<LabeledRow> train;
  text = read(JoinPath(data, "authored_prompts.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadLabeledJsonl(*text, "authored_prompts.jsonl"), &train); !s.ok()) return s;
  text = read(src("sources/clinc+oos-eval/data/data_full.json"));
  if (!text.ok()) return text.status();
  ClincOptions clinc;
  clinc.seed = seed;
  clinc.cap_chat = absl::GetFlag(FLAGS_clinc_chat_cap);
  clinc.cap_tool = absl::GetFlag(FLAGS_clinc_tool_cap);
  clinc.cap_math = absl::GetFlag(FLAGS_clinc_math_cap);
  if (auto s = Append(ReadClinc(*text, clinc), &train); !s.ok()) return s;
  text = read(src("sources/openai+grade-school-math/grade_school_math/data/train.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadGsm8k(*text, absl::GetFlag(FLAGS_gsm8k_cap), seed), &train); !s.ok())
    return s;
  text = read(src("sources/HowieHwong+MetaTool/dataset/tmp_dataset/Task1.json"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadMetaTool(*text, metatool_labels), &train); !s.ok()) return s;
  for (const char* task : kBbhTasks) {
    text = read(src(absl::StrCat("sources/suzgunmirac+BIG-Bench-Hard/bbh/", task, ".json")));
    if (!text.ok()) return text.status();
    if (auto s = Append(ReadBbhTask(*text, task, absl::GetFlag(FLAGS_bbh_cap), seed), &train);
        !s.ok())
      return s;
  }
  text = read(src("routing/routing_mmlu.jsonl"));
  if (!text.ok()) return text.status();
  const std::string mmlu = *text;
  if (auto s = Append(ReadMmluTasks(mmlu, absl::GetFlag(FLAGS_mmlu_cap), seed), &train); !s.ok())
    return s;
  text = read(src("taskset_train.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadTaskset(*text, {"clinc150", "gsm8k", "metatool_task1", "bbh", "mmlu"}),
                      &train);
      !s.ok()) {
    return s;
  }

  // Evaluation sources: never used for training.
  std::vector<LabeledRow> eval;
  text = read(src("sources/lm-sys+FastChat/fastchat/llm_judge/data/mt_bench/question.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadMtBench(*text), &eval); !s.ok()) return s;
  text = read(src("sources/yizhongw+self-instruct/human_eval/user_oriented_instructions.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadSelfInstruct(*text, self_instruct_labels), &eval); !s.ok()) return s;
  std::vector<LabeledRow> bfcl;
  for (const char* category : kBfclLive) {
    text = read(src(absl::StrCat(
        "sources/ShishirPatil+gorilla/berkeley-function-call-leaderboard/bfcl_eval/data/BFCL_v4_",
        category, ".json")));
    if (!text.ok()) return text.status();
    if (auto s = Append(ReadBfcl(*text, category), &bfcl); !s.ok()) return s;
  }
  for (LabeledRow& r : CapPerGroup(std::move(bfcl), absl::GetFlag(FLAGS_bfcl_cap), seed))
    eval.push_back(std::move(r));
  for (const char* category : {"irrelevance", "live_irrelevance"}) {
    text = read(src(absl::StrCat(
        "sources/ShishirPatil+gorilla/berkeley-function-call-leaderboard/bfcl_eval/data/BFCL_v4_",
        category, ".json")));
    if (!text.ok()) return text.status();
    if (auto s = Append(ReadBfclIrrelevance(*text, category, irrelevance_labels), &eval); !s.ok())
      return s;
  }

  DatasetBuilder builder;
  builder.AddTraining(std::move(train));
  builder.AddEvaluation(std::move(eval));

  // Complexity.
  std::vector<OutcomeRow> complexity, complexity_eval;
  text = read(src("routing/routing_gsm8k.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadRouting(*text, "routing_gsm8k.jsonl"), &complexity); !s.ok()) return s;
  if (auto s = Append(ReadRouting(mmlu, "routing_mmlu.jsonl"), &complexity); !s.ok()) return s;
  text = read(src("routing/routing_mt_bench.jsonl"));
  if (!text.ok()) return text.status();
  if (auto s = Append(ReadRouting(*text, "routing_mt_bench.jsonl"), &complexity_eval); !s.ok()) {
    return s;
  }

  std::vector<json> rows;
  json manifest = {{"generator", "tiermesh-prepare-classifier-data"},
                   {"seed", seed},
                   {"caps",
                    {{"clinc_chat", clinc.cap_chat},
                     {"clinc_tool", clinc.cap_tool},
                     {"clinc_math", clinc.cap_math},
                     {"gsm8k", absl::GetFlag(FLAGS_gsm8k_cap)},
                     {"bbh", absl::GetFlag(FLAGS_bbh_cap)},
                     {"mmlu", absl::GetFlag(FLAGS_mmlu_cap)},
                     {"bfcl", absl::GetFlag(FLAGS_bfcl_cap)}}}};
  const auto write = [&](const std::string& name, const std::vector<json>& lines,
                         json info) -> absl::Status {
    const std::string contents = ToJsonLines(lines);
    info["sha256"] = Sha256Hex(contents);
    manifest["files"][name] = std::move(info);
    return WriteWholeFile(JoinPath(out, name), contents);
  };
  for (const LabeledRow& r : builder.training()) rows.push_back(LabeledRowJson(r));
  json train_info = Counts(builder.training());
  train_info["duplicates_dropped"] = builder.duplicates_dropped();
  if (auto s = write("task_train.jsonl", rows, train_info); !s.ok()) return s;
  rows.clear();
  for (const LabeledRow& r : builder.evaluation()) rows.push_back(LabeledRowJson(r));
  json eval_info = Counts(builder.evaluation());
  eval_info["dropped_as_training_overlap"] = builder.evaluation_overlaps_dropped();
  if (auto s = write("task_eval.jsonl", rows, eval_info); !s.ok()) return s;
  for (auto* set : {&complexity, &complexity_eval}) {
    rows.clear();
    std::map<std::string, int64_t> per_source;
    int64_t positives = 0;
    for (const OutcomeRow& r : *set) {
      rows.push_back(OutcomeRowJson(r));
      ++per_source[r.source];
      positives += r.needs_strong;
    }
    const std::string name = set == &complexity ? "complexity.jsonl" : "complexity_eval.jsonl";
    if (auto s =
            write(name, rows,
                  {{"rows", set->size()}, {"needs_strong", positives}, {"sources", per_source}});
        !s.ok()) {
      return s;
    }
  }
  if (auto s = WriteWholeFile(JoinPath(out, "MANIFEST.json"), manifest.dump(2) + "\n"); !s.ok()) {
    return s;
  }
  std::cout << manifest.dump(2) << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace tiermesh::classifier

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Builds the classifier's training/evaluation JSONL files.\n"
      "  tiermesh-prepare-classifier-data --datasets DIR --data tools/classifier/data --out DIR");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = tiermesh::classifier::Run();
  if (!status.ok()) {
    std::cerr << "tiermesh-prepare-classifier-data: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
