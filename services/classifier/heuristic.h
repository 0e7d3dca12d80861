// The keyword heuristic that tiermesh measures itself against (`mode:
// heuristic`), exactly as in the classifier issue:
//   complexity = +0.2 if the prompt is longer than 500 characters
//              + 0.4 if it has a reasoning word (design, architecture, prove,
//                analyze, why, trade-off, optimize, compare, evaluate)
//              + 0.3 if it has a maths word (math, calculate, algorithm)
//              + 0.2 if it has more than one '?' or more than 3 newlines
//              capped at 1.0;
//   tool      when a tool word (weather, temperature, forecast, news, today,
//             latest, current, now, search, find, lookup) appears or the
//             caller offers tools.
// The task is tool, else math (maths word), else reasoning (reasoning word),
// else chat; the baseline has no code rule, as in common practice. Words match
// whole lower-cased words (not substrings: "know" does not contain "now").
//
//   HeuristicVerdict v = ClassifyHeuristic(input);
//   float c = HeuristicComplexity("Why does the sky look blue?");  // 0.4
#ifndef TIERMESH_SERVICES_CLASSIFIER_HEURISTIC_H_
#define TIERMESH_SERVICES_CLASSIFIER_HEURISTIC_H_

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "services/classifier/types.h"

namespace tiermesh::classifier {

struct HeuristicVerdict {
  TaskType task = TaskType::kChat;
  std::array<float, kNumTasks> probabilities{};  // 0.6 for `task`, 0.1 for the others
  float complexity = 0;
  std::vector<Reason> reasons;  // the rules that fired, e.g. "heuristic:tool_word:weather"
};

// The prompt the heuristic reads: every user (and unspecified-role) turn,
// joined by newlines.
std::string HeuristicPrompt(const ClassifyInput& input);

HeuristicVerdict ClassifyHeuristic(const ClassifyInput& input);
// Complexity of a single prompt (as used when evaluating the baseline).
float HeuristicComplexity(std::string_view prompt);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_HEURISTIC_H_
