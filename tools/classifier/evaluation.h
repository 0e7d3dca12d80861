// Evaluation metrics for the classifier trainer: per-class precision /
// recall / F1, macro-F1, the confusion matrix, tool recall and tool
// false-positive rate for the task model; and, for complexity, the
// quality-vs-premium-share curve (route the top-k% prompts by score to the
// strong model) with its area, the share of the weak->strong quality gap it
// recovers (APGR), and the ROC AUC of needs_strong.
//
//   TaskReport r = EvaluateTasks(truth, predicted);   // class indices 0..4
//   std::cout << FormatTaskReport("held-out", r);
//   RoutingReport c = EvaluateRouting(scores, weak, strong, needs_strong);
#ifndef TIERMESH_TOOLS_CLASSIFIER_EVALUATION_H_
#define TIERMESH_TOOLS_CLASSIFIER_EVALUATION_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

#include "services/classifier/types.h"

namespace tiermesh::classifier {

struct ClassMetrics {
  double precision = 0;
  double recall = 0;
  double f1 = 0;
  int64_t support = 0;  // true rows of the class
};

struct TaskReport {
  int64_t rows = 0;
  // confusion[true][predicted], classes in kTaskOrder.
  std::array<std::array<int64_t, kNumTasks>, kNumTasks> confusion{};
  std::array<ClassMetrics, kNumTasks> per_class{};
  double accuracy = 0;
  // Mean F1 over the classes that have rows (absent classes are skipped and
  // listed in the text report).
  double macro_f1 = 0;
  int classes_present = 0;
  double tool_recall = 0;               // tool rows predicted tool
  double tool_false_positive_rate = 0;  // non-tool rows predicted tool
};

// `truth` and `predicted` hold class indices (0..kNumTasks-1), same length.
TaskReport EvaluateTasks(const std::vector<int>& truth, const std::vector<int>& predicted);
std::string FormatTaskReport(const std::string& title, const TaskReport& report);
nlohmann::json TaskReportJson(const TaskReport& report);

struct RoutingReport {
  int64_t rows = 0;
  double quality_weak = 0;    // everything to the weak model
  double quality_strong = 0;  // everything to the strong model
  // Mean quality over premium shares 0..1 (area under the curve).
  double auc = 0;
  // (auc - quality_weak) / (quality_strong - quality_weak): 0.5 is random.
  double apgr = 0;
  // Quality gap recovered when 20% / 50% of prompts go to the strong model.
  double pgr_at_20 = 0;
  double pgr_at_50 = 0;
  double roc_auc = 0;  // of `score` for needs_strong (0.5 = chance)
};

// `weak`/`strong`: per-prompt quality of each model (0/1 correctness or a
// judge score scaled to 0..1). Ties in `score` are routed in random order
// (the curve is the expectation), so coarse scores are not favoured.
RoutingReport EvaluateRouting(const std::vector<double>& score, const std::vector<double>& weak,
                              const std::vector<double>& strong,
                              const std::vector<int>& needs_strong);
std::string FormatRoutingReport(const std::string& title, const RoutingReport& report);
nlohmann::json RoutingReportJson(const RoutingReport& report);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_TOOLS_CLASSIFIER_EVALUATION_H_
