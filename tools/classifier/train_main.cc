// tiermesh-train-classifier: trains the classifier model file from labelled
// JSONL (see tools/classifier/README.md for the reproducible command that
// produces models/classifier/default.tmcl).
//
//   tiermesh-train-classifier --task-data task_train.jsonl --complexity-data complexity.jsonl
//       --eval-data task_eval.jsonl --complexity-eval-data complexity_eval.jsonl
//       --out default.tmcl [--report report.json]
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "tools/classifier/file_util.h"
#include "tools/classifier/trainer.h"

ABSL_FLAG(std::string, task_data, "",
          "labelled task JSONL (text|messages, label, source, license)");
ABSL_FLAG(std::string, complexity_data, "",
          "outcome JSONL (text, needs_strong, weak, strong, source, license)");
ABSL_FLAG(std::string, eval_data, "", "optional out-of-source task JSONL (never trained on)");
ABSL_FLAG(std::string, complexity_eval_data, "", "optional out-of-source outcome JSONL");
ABSL_FLAG(std::string, out, "", "model file to write");
ABSL_FLAG(std::string, report, "", "optional: write the full JSON report here");
ABSL_FLAG(double, heldout, 0.15, "share of task rows held out for evaluation");
ABSL_FLAG(uint64_t, seed, 1, "seed for splits, shuffling and augmentation");
ABSL_FLAG(uint32_t, hash_bits, 16, "hashed feature buckets = 2^hash_bits");
ABSL_FLAG(uint32_t, char_ngram_min, 4, "smallest character n-gram (0 disables)");
ABSL_FLAG(uint32_t, char_ngram_max, 4, "largest character n-gram");
ABSL_FLAG(std::string, encoding, "f16", "weight encoding in the file: f16 or f32");
ABSL_FLAG(int, epochs, 12, "task model epochs");
ABSL_FLAG(double, learning_rate, 0.2, "task model AdaGrad step");
ABSL_FLAG(double, l2, 1e-5, "task model L2");
ABSL_FLAG(int, complexity_epochs, 8, "complexity model epochs");
ABSL_FLAG(double, complexity_learning_rate, 0.05, "complexity model AdaGrad step");
ABSL_FLAG(double, complexity_l2, 1e-3, "complexity model L2");
ABSL_FLAG(double, tool_augment, 0.5, "share of tool rows given synthetic offered tools");
ABSL_FLAG(double, source_balance, 0.5,
          "0: rows weigh equally within a class; 1: sources weigh equally");
ABSL_FLAG(double, non_tool_augment, 0.01, "share of other rows given synthetic offered tools");

namespace tiermesh::classifier {
namespace {

absl::Status Run(const std::string& command_line) {
  TrainerOptions o;
  o.task_data = absl::GetFlag(FLAGS_task_data);
  o.complexity_data = absl::GetFlag(FLAGS_complexity_data);
  o.task_eval_data = absl::GetFlag(FLAGS_eval_data);
  o.complexity_eval_data = absl::GetFlag(FLAGS_complexity_eval_data);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (o.task_data.empty() || o.complexity_data.empty() || out.empty()) {
    return absl::InvalidArgumentError("--task-data, --complexity-data and --out are required");
  }
  o.heldout_fraction = absl::GetFlag(FLAGS_heldout);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.features.hash_bits = absl::GetFlag(FLAGS_hash_bits);
  o.features.char_ngram_min = absl::GetFlag(FLAGS_char_ngram_min);
  o.features.char_ngram_max = absl::GetFlag(FLAGS_char_ngram_max);
  const std::string encoding = absl::GetFlag(FLAGS_encoding);
  if (encoding == "f16") {
    o.encoding = WeightEncoding::kF16;
  } else if (encoding == "f32") {
    o.encoding = WeightEncoding::kF32;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--encoding must be f16 or f32, got ", encoding));
  }
  o.task_sgd.epochs = absl::GetFlag(FLAGS_epochs);
  o.task_sgd.learning_rate = absl::GetFlag(FLAGS_learning_rate);
  o.task_sgd.l2 = absl::GetFlag(FLAGS_l2);
  o.task_sgd.seed = o.seed;
  o.complexity_sgd.epochs = absl::GetFlag(FLAGS_complexity_epochs);
  o.complexity_sgd.learning_rate = absl::GetFlag(FLAGS_complexity_learning_rate);
  o.complexity_sgd.l2 = absl::GetFlag(FLAGS_complexity_l2);
  o.complexity_sgd.seed = o.seed + 1;
  o.tool_augment_fraction = absl::GetFlag(FLAGS_tool_augment);
  o.non_tool_augment_fraction = absl::GetFlag(FLAGS_non_tool_augment);
  o.source_balance = absl::GetFlag(FLAGS_source_balance);
  o.created_by = command_line;

  absl::StatusOr<TrainerResult> result = TrainClassifier(o);
  if (!result.ok()) return result.status();
  std::cout << result->text_report;
  if (absl::Status s = WriteModelFile(result->params, out); !s.ok()) return s;
  const std::string report = absl::GetFlag(FLAGS_report);
  if (!report.empty()) {
    if (absl::Status s = WriteWholeFile(report, result->report.dump(2) + "\n"); !s.ok()) return s;
  }
  std::cout << "wrote " << out << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace tiermesh::classifier

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains the tiermesh classifier model.\n"
      "  tiermesh-train-classifier --task-data F --complexity-data F --out MODEL [--eval-data F]");
  std::vector<std::string> args;
  args.push_back("tiermesh-train-classifier");
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = tiermesh::classifier::Run(absl::StrJoin(args, " "));
  if (!status.ok()) {
    std::cerr << "tiermesh-train-classifier: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
