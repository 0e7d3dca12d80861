// The classifier trainer as a library (tiermesh-train-classifier is a thin
// main around it): reads labelled JSONL, splits off a held-out set, trains
// the task model and the calibrated complexity model, evaluates both against
// the keyword heuristic, and returns the model parameters (with provenance
// and the report embedded) plus a printable report.
//
//   TrainerOptions o;
//   o.task_data = "task_train.jsonl";  o.complexity_data = "complexity.jsonl";
//   ASSIGN_OR_RETURN(TrainerResult r, TrainClassifier(o));
//   RETURN_IF_ERROR(WriteModelFile(r.params, "default.tmcl"));
//   std::cout << r.text_report;
#ifndef TIERMESH_TOOLS_CLASSIFIER_TRAINER_H_
#define TIERMESH_TOOLS_CLASSIFIER_TRAINER_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

#include "services/classifier/model.h"
#include "tools/classifier/training.h"

namespace tiermesh::classifier {

// Licences whose data may be used in a shipped model (all allow commercial
// use; attribution goes in models/classifier/NOTICE.md).
inline const std::set<std::string>& DefaultPermittedLicenses() {
  static const auto* const kLicenses = new std::set<std::string>{
      "MIT", "Apache-2.0", "CC BY 3.0", "CC BY 4.0", "CC0-1.0", "BSD-3-Clause"};
  return *kLicenses;
}

struct TrainerOptions {
  // JSONL with `text`/`messages`, `label`, `source`, `license` (required).
  std::string task_data;
  // JSONL with `text`, `needs_strong`, `weak`, `strong`, `source`, `license` (required).
  std::string complexity_data;
  // Optional out-of-source evaluation files (never trained on).
  std::string task_eval_data;
  std::string complexity_eval_data;

  FeatureConfig features;
  WeightEncoding encoding = WeightEncoding::kF16;
  double heldout_fraction = 0.15;
  uint64_t seed = 1;
  SgdOptions task_sgd{12, 0.2, 1e-5, 1, {}};
  SgdOptions complexity_sgd{8, 0.05, 1e-3, 2, {}};
  // Share of training tool rows / other rows that get synthetic offered tools
  // (teaches the tools_offered feature; the datasets carry few real ones).
  double tool_augment_fraction = 0.5;
  // Within each class, a row's weight is proportional to
  // 1 / rows(source, class)^source_balance: 0 weighs rows equally, 1 weighs
  // sources equally. Keeps one big source (CLINC, GSM8K) from defining a class.
  double source_balance = 0.5;
  double non_tool_augment_fraction = 0.01;
  // Fixed complexity weights for structural features the outcome data
  // cannot teach (single-turn prompts only): feature name -> weight.
  std::map<std::string, float> complexity_priors = {{"turns_log", 1.0f}, {"context_len_log", 2.0f}};
  // Structural features both models leave at zero: in single-turn data they
  // duplicate len_log / the bias, so their learned weights would be an
  // arbitrary split that extrapolates badly to conversations.
  std::vector<std::string> frozen_structural = {"total_len_log", "messages_log"};
  std::set<std::string> permitted_licenses = DefaultPermittedLicenses();
  std::string created_by;  // recorded in the model file
  std::string attribution = "models/classifier/NOTICE.md";
};

struct TrainerResult {
  ModelParams params;       // weights rounded to the encoding, report embedded
  nlohmann::json report;    // full evaluation report
  std::string text_report;  // the same, for people
};

[[nodiscard]] absl::StatusOr<TrainerResult> TrainClassifier(const TrainerOptions& options);

// True when every ';'-separated part of `license` names a permitted licence
// ("MIT; labels Apache-2.0" is permitted when MIT and Apache-2.0 are).
bool LicensePermitted(const std::string& license, const std::set<std::string>& permitted);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_TOOLS_CLASSIFIER_TRAINER_H_
