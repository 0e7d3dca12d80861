#include "tools/classifier/evaluation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace tiermesh::classifier {
namespace {

std::string Fixed(double v, int decimals = 3) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

TaskReport EvaluateTasks(const std::vector<int>& truth, const std::vector<int>& predicted) {
  TaskReport r;
  const size_t n = std::min(truth.size(), predicted.size());
  r.rows = static_cast<int64_t>(n);
  int64_t correct = 0;
  for (size_t i = 0; i < n; ++i) {
    if (truth[i] < 0 || truth[i] >= kNumTasks || predicted[i] < 0 || predicted[i] >= kNumTasks) {
      continue;
    }
    ++r.confusion[truth[i]][predicted[i]];
    if (truth[i] == predicted[i]) ++correct;
  }
  r.accuracy = n > 0 ? static_cast<double>(correct) / n : 0;
  double f1_sum = 0;
  for (int c = 0; c < kNumTasks; ++c) {
    int64_t tp = r.confusion[c][c];
    int64_t support = 0;
    int64_t predicted_c = 0;
    for (int k = 0; k < kNumTasks; ++k) {
      support += r.confusion[c][k];
      predicted_c += r.confusion[k][c];
    }
    ClassMetrics& m = r.per_class[c];
    m.support = support;
    m.precision = predicted_c > 0 ? static_cast<double>(tp) / predicted_c : 0;
    m.recall = support > 0 ? static_cast<double>(tp) / support : 0;
    m.f1 = m.precision + m.recall > 0 ? 2 * m.precision * m.recall / (m.precision + m.recall) : 0;
    if (support > 0) {
      f1_sum += m.f1;
      ++r.classes_present;
    }
  }
  r.macro_f1 = r.classes_present > 0 ? f1_sum / r.classes_present : 0;
  const int tool = TaskIndex(TaskType::kTool);
  r.tool_recall = r.per_class[tool].recall;
  int64_t non_tool = 0;
  int64_t non_tool_as_tool = 0;
  for (int c = 0; c < kNumTasks; ++c) {
    if (c == tool) continue;
    for (int k = 0; k < kNumTasks; ++k) non_tool += r.confusion[c][k];
    non_tool_as_tool += r.confusion[c][tool];
  }
  r.tool_false_positive_rate = non_tool > 0 ? static_cast<double>(non_tool_as_tool) / non_tool : 0;
  return r;
}

std::string FormatTaskReport(const std::string& title, const TaskReport& r) {
  std::string out = "== " + title + " (" + std::to_string(r.rows) + " rows)\n";
  out += "  class        precision  recall     f1  support\n";
  for (int c = 0; c < kNumTasks; ++c) {
    const ClassMetrics& m = r.per_class[c];
    std::string name(TaskName(kTaskOrder[c]));
    out += "  " + name + std::string(12 - name.size(), ' ') + Pad(Fixed(m.precision), 10) +
           Pad(Fixed(m.recall), 8) + Pad(Fixed(m.f1), 7) + Pad(std::to_string(m.support), 9) +
           (m.support == 0 ? "  (absent: not in macro-F1)" : "") + "\n";
  }
  out += "  macro-F1 " + Fixed(r.macro_f1) + "  accuracy " + Fixed(r.accuracy) + "  tool recall " +
         Fixed(r.tool_recall) + "  tool FPR " + Fixed(r.tool_false_positive_rate) + "\n";
  out += "  confusion (rows: truth, columns: predicted)\n              ";
  for (TaskType t : kTaskOrder) out += Pad(std::string(TaskName(t)), 10);
  out += "\n";
  for (int c = 0; c < kNumTasks; ++c) {
    std::string name(TaskName(kTaskOrder[c]));
    out += "  " + name + std::string(12 - name.size(), ' ');
    for (int k = 0; k < kNumTasks; ++k) out += Pad(std::to_string(r.confusion[c][k]), 10);
    out += "\n";
  }
  return out;
}

nlohmann::json TaskReportJson(const TaskReport& r) {
  nlohmann::json per_class = nlohmann::json::object();
  nlohmann::json confusion = nlohmann::json::array();
  for (int c = 0; c < kNumTasks; ++c) {
    const ClassMetrics& m = r.per_class[c];
    per_class[std::string(TaskName(kTaskOrder[c]))] = {
        {"precision", m.precision}, {"recall", m.recall}, {"f1", m.f1}, {"support", m.support}};
    confusion.push_back(r.confusion[c]);
  }
  return {{"rows", r.rows},
          {"macro_f1", r.macro_f1},
          {"accuracy", r.accuracy},
          {"tool_recall", r.tool_recall},
          {"tool_false_positive_rate", r.tool_false_positive_rate},
          {"per_class", per_class},
          {"confusion", confusion}};
}

RoutingReport EvaluateRouting(const std::vector<double>& score, const std::vector<double>& weak,
                              const std::vector<double>& strong,
                              const std::vector<int>& needs_strong) {
  RoutingReport r;
  const size_t n = std::min({score.size(), weak.size(), strong.size(), needs_strong.size()});
  r.rows = static_cast<int64_t>(n);
  if (n == 0) return r;
  double sum_weak = 0;
  double sum_strong = 0;
  for (size_t i = 0; i < n; ++i) {
    sum_weak += weak[i];
    sum_strong += strong[i];
  }
  r.quality_weak = sum_weak / n;
  r.quality_strong = sum_strong / n;

  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return score[a] > score[b]; });
  // Curve points at tie-group boundaries; inside a group the expected curve
  // is linear, so the trapezoid rule over these points is exact.
  std::vector<std::pair<double, double>> points;  // (share, quality)
  double gain = 0;
  points.push_back({0, r.quality_weak});
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && score[order[j]] == score[order[i]]) {
      gain += strong[order[j]] - weak[order[j]];
      ++j;
    }
    points.push_back({static_cast<double>(j) / n, r.quality_weak + gain / n});
    i = j;
  }
  double area = 0;
  for (size_t k = 1; k < points.size(); ++k) {
    area += (points[k].first - points[k - 1].first) * (points[k].second + points[k - 1].second) / 2;
  }
  r.auc = area;
  const double gap = r.quality_strong - r.quality_weak;
  const auto quality_at = [&](double share) {
    for (size_t k = 1; k < points.size(); ++k) {
      if (points[k].first >= share) {
        const double span = points[k].first - points[k - 1].first;
        const double t = span > 0 ? (share - points[k - 1].first) / span : 1;
        return points[k - 1].second + t * (points[k].second - points[k - 1].second);
      }
    }
    return points.back().second;
  };
  if (std::fabs(gap) > 1e-12) {
    r.apgr = (r.auc - r.quality_weak) / gap;
    r.pgr_at_20 = (quality_at(0.2) - r.quality_weak) / gap;
    r.pgr_at_50 = (quality_at(0.5) - r.quality_weak) / gap;
  }
  // ROC AUC via the rank-sum statistic with average ranks for ties.
  std::vector<size_t> asc = order;
  std::reverse(asc.begin(), asc.end());
  std::stable_sort(asc.begin(), asc.end(), [&](size_t a, size_t b) { return score[a] < score[b]; });
  double rank_sum = 0;
  int64_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && score[asc[j]] == score[asc[i]]) ++j;
    const double average_rank = (i + 1 + j) / 2.0;
    for (size_t k = i; k < j; ++k) {
      if (needs_strong[asc[k]] != 0) {
        rank_sum += average_rank;
        ++positives;
      }
    }
    i = j;
  }
  const int64_t negatives = static_cast<int64_t>(n) - positives;
  if (positives > 0 && negatives > 0) {
    r.roc_auc = (rank_sum - positives * (positives + 1) / 2.0) /
                (static_cast<double>(positives) * negatives);
  }
  return r;
}

std::string FormatRoutingReport(const std::string& title, const RoutingReport& r) {
  return "  " + title + std::string(title.size() < 22 ? 22 - title.size() : 0, ' ') + " AUC " +
         Fixed(r.auc, 4) + "  APGR " + Fixed(r.apgr) + "  PGR@20% " + Fixed(r.pgr_at_20) +
         "  PGR@50% " + Fixed(r.pgr_at_50) + "  ROC-AUC " + Fixed(r.roc_auc) + "\n";
}

nlohmann::json RoutingReportJson(const RoutingReport& r) {
  return {{"rows", r.rows},
          {"quality_weak", r.quality_weak},
          {"quality_strong", r.quality_strong},
          {"auc", r.auc},
          {"apgr", r.apgr},
          {"pgr_at_20", r.pgr_at_20},
          {"pgr_at_50", r.pgr_at_50},
          {"roc_auc", r.roc_auc}};
}

}  // namespace tiermesh::classifier
