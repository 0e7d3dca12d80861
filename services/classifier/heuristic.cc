#include "services/classifier/heuristic.h"

#include <algorithm>

namespace tiermesh::classifier {
namespace {

constexpr std::string_view kReasoningWords[] = {"design",   "architecture", "prove",
                                                "analyze",  "why",          "trade-off",
                                                "optimize", "compare",      "evaluate"};
constexpr std::string_view kMathWords[] = {"math", "calculate", "algorithm"};
constexpr std::string_view kToolWords[] = {"weather", "temperature", "forecast", "news",
                                           "today",   "latest",      "current",  "now",
                                           "search",  "find",        "lookup"};

bool IsWordByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '\'' || static_cast<unsigned char>(c) >= 0x80;
}

// Lower-cased words ("trade-off" stays one word).
std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  for (const char c : text) {
    if (IsWordByte(c)) {
      current.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c);
    } else if (!current.empty()) {
      words.push_back(std::move(current));
      current.clear();
    }
  }
  if (!current.empty()) words.push_back(std::move(current));
  for (std::string& w : words) {
    while (!w.empty() && (w.back() == '-' || w.back() == '\'')) w.pop_back();
    if (w.size() > 2 && w.compare(w.size() - 2, 2, "'s") == 0) w.resize(w.size() - 2);
  }
  return words;
}

template <size_t N>
std::string_view FirstMatch(const std::vector<std::string>& words,
                            const std::string_view (&list)[N]) {
  for (const std::string& w : words) {
    for (std::string_view k : list) {
      if (w == k) return k;
    }
  }
  return {};
}

struct Rules {
  std::string_view reasoning_word;
  std::string_view math_word;
  std::string_view tool_word;
  bool long_prompt = false;
  bool many_questions_or_lines = false;
  float complexity = 0;
};

Rules Apply(std::string_view prompt) {
  Rules r;
  const std::vector<std::string> words = Words(prompt);
  r.reasoning_word = FirstMatch(words, kReasoningWords);
  r.math_word = FirstMatch(words, kMathWords);
  r.tool_word = FirstMatch(words, kToolWords);
  r.long_prompt = prompt.size() > 500;
  r.many_questions_or_lines = std::count(prompt.begin(), prompt.end(), '?') > 1 ||
                              std::count(prompt.begin(), prompt.end(), '\n') > 3;
  float c = 0;
  if (r.long_prompt) c += 0.2f;
  if (!r.reasoning_word.empty()) c += 0.4f;
  if (!r.math_word.empty()) c += 0.3f;
  if (r.many_questions_or_lines) c += 0.2f;
  r.complexity = std::min(c, 1.0f);
  return r;
}

}  // namespace

std::string HeuristicPrompt(const ClassifyInput& input) {
  std::string prompt;
  for (const MessageView& m : input.messages) {
    if (m.role != Role::kUser && m.role != Role::kUnspecified) continue;
    if (!prompt.empty()) prompt.push_back('\n');
    prompt.append(m.content);
  }
  return prompt;
}

float HeuristicComplexity(std::string_view prompt) { return Apply(prompt).complexity; }

HeuristicVerdict ClassifyHeuristic(const ClassifyInput& input) {
  const Rules r = Apply(HeuristicPrompt(input));
  HeuristicVerdict v;
  v.complexity = r.complexity;
  if (!input.tools.empty()) {
    v.task = TaskType::kTool;
    v.reasons.push_back({"heuristic:tools_offered", 1});
  } else if (!r.tool_word.empty()) {
    v.task = TaskType::kTool;
    v.reasons.push_back({"heuristic:tool_word:" + std::string(r.tool_word), 1});
  } else if (!r.math_word.empty()) {
    v.task = TaskType::kMath;
    v.reasons.push_back({"heuristic:math_word:" + std::string(r.math_word), 0.3f});
  } else if (!r.reasoning_word.empty()) {
    v.task = TaskType::kReasoning;
    v.reasons.push_back({"heuristic:reasoning_word:" + std::string(r.reasoning_word), 0.4f});
  } else {
    v.task = TaskType::kChat;
  }
  if (v.task != TaskType::kMath && !r.math_word.empty()) {
    v.reasons.push_back({"heuristic:math_word:" + std::string(r.math_word), 0.3f});
  }
  if (v.task != TaskType::kReasoning && !r.reasoning_word.empty()) {
    v.reasons.push_back({"heuristic:reasoning_word:" + std::string(r.reasoning_word), 0.4f});
  }
  if (r.long_prompt) v.reasons.push_back({"heuristic:long_prompt", 0.2f});
  if (r.many_questions_or_lines) v.reasons.push_back({"heuristic:questions_or_lines", 0.2f});
  for (int i = 0; i < kNumTasks; ++i) {
    v.probabilities[i] = kTaskOrder[i] == v.task ? 0.6f : 0.1f;
  }
  return v;
}

}  // namespace tiermesh::classifier
