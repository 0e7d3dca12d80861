#include "tools/classifier/trainer.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"

#include "services/classifier/classifier.h"
#include "services/classifier/heuristic.h"
#include "services/classifier/sha256.h"
#include "tools/classifier/dataset.h"
#include "tools/classifier/evaluation.h"
#include "tools/classifier/file_util.h"

namespace tiermesh::classifier {
namespace {

using nlohmann::json;

struct LoadedOutcome {
  OwnedRequest request;
  int needs_strong = 0;
  double weak = 0;
  double strong = 0;
  std::string source;
  std::string license;
};

absl::StatusOr<std::vector<LoadedOutcome>> ReadOutcomes(const std::string& contents,
                                                        const std::string& file) {
  std::vector<LoadedOutcome> rows;
  size_t pos = 0;
  int line_number = 0;
  while (pos < contents.size()) {
    size_t end = contents.find('\n', pos);
    if (end == std::string::npos) end = contents.size();
    const std::string line = contents.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", line_number, ": ", what));
    };
    json v = json::parse(line, nullptr, false);
    if (v.is_discarded()) return error("not valid JSON");
    absl::StatusOr<OwnedRequest> request = ParseRequest(v);
    if (!request.ok()) return error(std::string(request.status().message()));
    LoadedOutcome row;
    row.request = *std::move(request);
    try {
      row.needs_strong = v.at("needs_strong").get<int>();
      row.weak = v.at("weak").get<double>();
      row.strong = v.at("strong").get<double>();
      row.source = v.at("source").get<std::string>();
      row.license = v.at("license").get<std::string>();
    } catch (const json::exception& e) {
      return error(e.what());
    }
    if (row.needs_strong != 0 && row.needs_strong != 1) return error("needs_strong must be 0 or 1");
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string Trim(std::string s) {
  const size_t b = s.find_first_not_of(' ');
  const size_t e = s.find_last_not_of(' ');
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// A few generic tool declarations for augmentation (only their number is a
// feature; names and descriptions are not hashed).
const OwnedRequest::Tool kSyntheticTools[] = {
    {"search_web", "Search the web and return the top results", "{}"},
    {"get_weather", "Current weather and forecast for a location", "{}"},
    {"send_email", "Send an email on the user's behalf", "{}"},
    {"get_stock_quote", "Latest price of a stock or currency", "{}"},
    {"create_calendar_event", "Create an event in the user's calendar", "{}"},
};

void MaybeAddTools(const TrainerOptions& o, bool tool_row, OwnedRequest* r) {
  if (!r->tools.empty()) return;
  const double f = StableFraction(r->JoinedText(), o.seed ^ 0x746f6f6c73ULL);
  const double share = tool_row ? o.tool_augment_fraction : o.non_tool_augment_fraction;
  if (f >= share) return;
  const int count = 1 + static_cast<int>(f * 1000) % 3;
  const int first = static_cast<int>(f * 7919) % 5;
  for (int k = 0; k < count; ++k) r->tools.push_back(kSyntheticTools[(first + k) % 5]);
}

struct TaskEval {
  TaskReport model;
  TaskReport heuristic;
  json per_source;
};

TaskEval EvaluateTaskRows(const Model& model, const std::vector<LabeledRow>& rows,
                          bool strip_tools) {
  std::vector<int> truth, predicted, heuristic;
  std::map<std::string, std::pair<int64_t, int64_t>> per_source;  // correct, total
  for (const LabeledRow& row : rows) {
    OwnedRequest r = row.request;
    if (strip_tools) r.tools.clear();
    const ClassifyInput input = r.View();
    const Classification c = ClassifyWithModel(model, input, 0);
    const int t = TaskIndex(*TaskFromName(row.label));
    truth.push_back(t);
    predicted.push_back(TaskIndex(c.task));
    heuristic.push_back(TaskIndex(ClassifyHeuristic(input).task));
    auto& [correct, total] = per_source[row.source];
    correct += predicted.back() == t ? 1 : 0;
    ++total;
  }
  TaskEval e;
  e.model = EvaluateTasks(truth, predicted);
  e.heuristic = EvaluateTasks(truth, heuristic);
  e.per_source = json::object();
  for (const auto& [source, counts] : per_source) {
    e.per_source[source] = {
        {"rows", counts.second},
        {"accuracy", counts.second ? static_cast<double>(counts.first) / counts.second : 0.0}};
  }
  return e;
}

struct ComplexityEval {
  RoutingReport learned, heuristic, length;
  double mean_predicted = 0;
  double observed_rate = 0;
  double log_loss = 0;
};

ComplexityEval EvaluateComplexityRows(const Model& model, const std::vector<LoadedOutcome>& rows) {
  std::vector<double> learned, heuristic, length, weak, strong;
  std::vector<int> needs;
  ComplexityEval e;
  for (const LoadedOutcome& row : rows) {
    const ClassifyInput input = row.request.View();
    const FeatureVector fv = model.extractor().Extract(input);
    const double p = model.Calibrate(model.Score(fv).complexity_logit);
    learned.push_back(p);
    heuristic.push_back(HeuristicComplexity(HeuristicPrompt(input)));
    length.push_back(static_cast<double>(row.request.JoinedText().size()));
    weak.push_back(row.weak);
    strong.push_back(row.strong);
    needs.push_back(row.needs_strong);
    e.mean_predicted += p;
    e.observed_rate += row.needs_strong;
    const double q = std::min(std::max(p, 1e-7), 1 - 1e-7);
    e.log_loss -= row.needs_strong ? std::log(q) : std::log(1 - q);
  }
  if (!rows.empty()) {
    e.mean_predicted /= rows.size();
    e.observed_rate /= rows.size();
    e.log_loss /= rows.size();
  }
  e.learned = EvaluateRouting(learned, weak, strong, needs);
  e.heuristic = EvaluateRouting(heuristic, weak, strong, needs);
  e.length = EvaluateRouting(length, weak, strong, needs);
  return e;
}

json ComplexityJson(const ComplexityEval& e) {
  return {{"learned", RoutingReportJson(e.learned)},
          {"heuristic", RoutingReportJson(e.heuristic)},
          {"length", RoutingReportJson(e.length)},
          {"random_apgr", 0.5},
          {"calibration",
           {{"mean_predicted", e.mean_predicted},
            {"observed_rate", e.observed_rate},
            {"log_loss", e.log_loss}}}};
}

std::string ComplexityText(const std::string& title, const ComplexityEval& e) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "== %s (%lld prompts; weak %.3f, strong %.3f; quality if the top-k%% by score "
                "go to the strong model)\n",
                title.c_str(), static_cast<long long>(e.learned.rows), e.learned.quality_weak,
                e.learned.quality_strong);
  std::string out = buf;
  out += FormatRoutingReport("learned complexity", e.learned);
  out += FormatRoutingReport("keyword heuristic", e.heuristic);
  out += FormatRoutingReport("prompt length", e.length);
  out += "  random                 APGR 0.500 (expected)\n";
  std::snprintf(buf, sizeof(buf),
                "  calibration: mean predicted %.3f, observed needs_strong rate %.3f, log loss "
                "%.4f\n",
                e.mean_predicted, e.observed_rate, e.log_loss);
  out += buf;
  return out;
}

}  // namespace

bool LicensePermitted(const std::string& license, const std::set<std::string>& permitted) {
  if (license.empty()) return false;
  size_t pos = 0;
  while (pos <= license.size()) {
    size_t end = license.find(';', pos);
    if (end == std::string::npos) end = license.size();
    std::string part = Trim(license.substr(pos, end - pos));
    // "labels Apache-2.0": a qualifier word before the identifier.
    bool ok = permitted.count(part) > 0;
    for (const std::string& p : permitted) {
      if (ok) break;
      ok = part.size() > p.size() && part.compare(part.size() - p.size(), p.size(), p) == 0 &&
           part[part.size() - p.size() - 1] == ' ';
    }
    if (!ok) return false;
    pos = end + 1;
  }
  return true;
}

absl::StatusOr<TrainerResult> TrainClassifier(const TrainerOptions& o) {
  if (absl::Status s = o.features.Validate(); !s.ok()) return s;
  if (!(o.heldout_fraction >= 0 && o.heldout_fraction < 1)) {
    return absl::InvalidArgumentError("heldout fraction must be in [0, 1)");
  }
  if (o.task_data.empty() || o.complexity_data.empty()) {
    return absl::InvalidArgumentError("task data and complexity data are both required");
  }
  Sha256 data_hash;
  absl::StatusOr<std::string> task_text = ReadWholeFile(o.task_data);
  if (!task_text.ok()) return task_text.status();
  absl::StatusOr<std::string> complexity_text = ReadWholeFile(o.complexity_data);
  if (!complexity_text.ok()) return complexity_text.status();
  data_hash.Update(*task_text);
  data_hash.Update(*complexity_text);

  absl::StatusOr<std::vector<LabeledRow>> task_rows = ReadLabeledJsonl(*task_text, o.task_data);
  if (!task_rows.ok()) return task_rows.status();
  absl::StatusOr<std::vector<LoadedOutcome>> outcome_rows =
      ReadOutcomes(*complexity_text, o.complexity_data);
  if (!outcome_rows.ok()) return outcome_rows.status();
  if (task_rows->empty() || outcome_rows->empty()) {
    return absl::InvalidArgumentError("training files have no rows");
  }
  for (const LabeledRow& r : *task_rows) {
    if (!LicensePermitted(r.license, o.permitted_licenses)) {
      return absl::FailedPreconditionError(
          absl::StrCat(o.task_data, ": source \"", r.source, "\" has licence \"", r.license,
                       "\", which is not permitted for a shipped model"));
    }
  }
  for (const LoadedOutcome& r : *outcome_rows) {
    if (!LicensePermitted(r.license, o.permitted_licenses)) {
      return absl::FailedPreconditionError(
          absl::StrCat(o.complexity_data, ": source \"", r.source, "\" has licence \"", r.license,
                       "\", which is not permitted for a shipped model"));
    }
  }

  // Splits by a stable hash of the text: independent of file order.
  std::vector<LabeledRow> train, heldout;
  for (LabeledRow& r : *task_rows) {
    // Salted: the data preparation samples rows with StableFraction(text, seed) too.
    const bool hold =
        StableFraction(r.request.JoinedText(), o.seed ^ 0x73706c6974ULL) < o.heldout_fraction;
    (hold ? heldout : train).push_back(std::move(r));
  }
  std::vector<LoadedOutcome> c_train, c_calib, c_test;
  for (LoadedOutcome& r : *outcome_rows) {
    const double f = StableFraction(r.request.JoinedText(), o.seed ^ 0x636f6d70ULL);
    (f < 0.6 ? c_train : f < 0.8 ? c_calib : c_test).push_back(std::move(r));
  }
  if (train.empty() || c_train.empty() || c_calib.empty()) {
    return absl::InvalidArgumentError("too few rows to split into training and held-out sets");
  }

  const FeatureExtractor extractor(o.features);
  ModelParams params;
  params.features = o.features;
  params.encoding = o.encoding;
  params.weights.assign(size_t{o.features.num_features()} * kWeightStride, 0.0f);
  const uint32_t base = o.features.num_buckets();
  const uint32_t bias = base + static_cast<uint32_t>(Structural::kBias);
  const std::vector<std::string> names = StructuralNames();
  const auto structural_index = [&](const std::string& name) -> absl::StatusOr<uint32_t> {
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown structural feature \"", name, "\""));
    }
    return base + static_cast<uint32_t>(it - names.begin());
  };
  SgdOptions task_sgd = o.task_sgd;
  SgdOptions complexity_sgd = o.complexity_sgd;
  for (const std::string& name : o.frozen_structural) {
    absl::StatusOr<uint32_t> index = structural_index(name);
    if (!index.ok()) return index.status();
    task_sgd.frozen.push_back(*index);
    complexity_sgd.frozen.push_back(*index);
  }
  for (const auto& [name, weight] : o.complexity_priors) {
    absl::StatusOr<uint32_t> index = structural_index(name);
    if (!index.ok()) return index.status();
    complexity_sgd.frozen.push_back(*index);
  }

  // Task model: every class carries the same total weight; inside a class,
  // sources are balanced by `source_balance`.
  std::map<std::pair<std::string, int>, int64_t> source_class_rows;
  for (const LabeledRow& r : train)
    ++source_class_rows[{r.source, TaskIndex(*TaskFromName(r.label))}];
  std::array<double, kNumTasks> class_mass{};
  for (const auto& [key, rows] : source_class_rows) {
    class_mass[key.second] += rows * std::pow(static_cast<double>(rows), -o.source_balance);
  }
  int present = 0;
  for (double m : class_mass) present += m > 0 ? 1 : 0;
  std::vector<SparseExample> examples;
  examples.reserve(train.size());
  std::map<std::pair<std::string, std::string>, int64_t> provenance;  // (source, licence)
  for (const LabeledRow& r : train) {
    const int label = TaskIndex(*TaskFromName(r.label));
    OwnedRequest request = r.request;
    MaybeAddTools(o, r.label == "tool", &request);
    SparseExample ex;
    ex.features = extractor.Extract(request.View()).features;
    ex.label = label;
    const double raw =
        std::pow(static_cast<double>(source_class_rows[{r.source, label}]), -o.source_balance);
    ex.weight =
        static_cast<float>(raw * static_cast<double>(train.size()) / (present * class_mass[label]));
    examples.push_back(std::move(ex));
    ++provenance[{r.source, r.license}];
  }
  TrainSoftmax(examples, task_sgd, bias, &params.weights);
  examples.clear();

  // Complexity model + Platt calibration on a separate split.
  std::map<std::pair<std::string, std::string>, int64_t> complexity_provenance;
  for (const LoadedOutcome& r : c_train) {
    SparseExample ex;
    ex.features = extractor.Extract(r.request.View()).features;
    ex.label = r.needs_strong;
    examples.push_back(std::move(ex));
    ++complexity_provenance[{r.source, r.license}];
  }
  TrainLogistic(examples, complexity_sgd, bias, &params.weights);
  examples.clear();
  std::vector<double> calib_scores;
  std::vector<int> calib_labels;
  for (const LoadedOutcome& r : c_calib) {
    const FeatureVector fv = extractor.Extract(r.request.View());
    double z = 0;
    for (const Feature& f : fv.features) {
      z += params.weights[size_t{f.index} * kWeightStride + kComplexityColumn] * f.value;
    }
    calib_scores.push_back(z);
    calib_labels.push_back(r.needs_strong);
    ++complexity_provenance[{r.source, r.license}];
  }
  const Platt platt = FitPlatt(calib_scores, calib_labels);
  params.platt_a = static_cast<float>(platt.a);
  params.platt_b = static_cast<float>(platt.b);
  for (const auto& [name, weight] : o.complexity_priors) {
    const size_t index = *structural_index(name);  // checked above
    // Priors are in calibrated log-odds per unit of the feature.
    params.weights[index * kWeightStride + kComplexityColumn] =
        std::fabs(params.platt_a) > 1e-6 ? weight / params.platt_a : weight;
  }
  RoundWeightsToEncoding(&params);

  params.info.created_by = o.created_by;
  params.info.data_sha256 = Sha256::Hex(data_hash.Finish());
  params.info.attribution = o.attribution;
  for (const auto& [key, rows] : provenance) {
    params.info.sources.push_back({key.first, key.second, "task", rows});
  }
  for (const auto& [key, rows] : complexity_provenance) {
    params.info.sources.push_back({key.first, key.second, "complexity", rows});
  }

  absl::StatusOr<std::shared_ptr<const Model>> model = Model::Create(params, "training");
  if (!model.ok()) return model.status();

  // Evaluation.
  TrainerResult result;
  json report = json::object();
  std::string text;
  text += absl::StrCat("task rows: ", train.size(), " train, ", heldout.size(),
                       " held out; complexity rows: ", c_train.size(), " train, ", c_calib.size(),
                       " calibration, ", c_test.size(), " test\n\n");
  report["rows"] = {{"task_train", train.size()},
                    {"task_heldout", heldout.size()},
                    {"complexity_train", c_train.size()},
                    {"complexity_calibration", c_calib.size()},
                    {"complexity_test", c_test.size()}};
  if (!heldout.empty()) {
    const TaskEval e = EvaluateTaskRows(**model, heldout, false);
    text += FormatTaskReport("task type, held-out split (learned)", e.model) + "\n";
    text += FormatTaskReport("task type, held-out split (keyword heuristic)", e.heuristic) + "\n";
    report["task_heldout"] = {{"learned", TaskReportJson(e.model)},
                              {"heuristic", TaskReportJson(e.heuristic)},
                              {"per_source", e.per_source}};
  }
  if (!o.task_eval_data.empty()) {
    absl::StatusOr<std::string> eval_text = ReadWholeFile(o.task_eval_data);
    if (!eval_text.ok()) return eval_text.status();
    absl::StatusOr<std::vector<LabeledRow>> eval_rows =
        ReadLabeledJsonl(*eval_text, o.task_eval_data);
    if (!eval_rows.ok()) return eval_rows.status();
    std::set<std::string> train_sources;
    for (const auto& [key, rows] : provenance) train_sources.insert(key.first);
    for (const LabeledRow& r : *eval_rows) {
      if (train_sources.count(r.source) > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(o.task_eval_data, ": source \"", r.source,
                         "\" is also a training source; the evaluation set must be out-of-source"));
      }
    }
    const TaskEval e = EvaluateTaskRows(**model, *eval_rows, false);
    const TaskEval bare = EvaluateTaskRows(**model, *eval_rows, true);
    text += FormatTaskReport("task type, out-of-source evaluation (learned)", e.model) + "\n";
    text += FormatTaskReport("task type, out-of-source evaluation, offered tools removed (learned)",
                             bare.model) +
            "\n";
    text +=
        FormatTaskReport("task type, out-of-source evaluation (keyword heuristic)", e.heuristic) +
        "\n";
    text += "  per source accuracy (learned):";
    for (const auto& [source, v] : e.per_source.items()) {
      char buf[96];
      std::snprintf(buf, sizeof(buf), " %s %.3f (%lld rows);", source.c_str(),
                    v["accuracy"].get<double>(), static_cast<long long>(v["rows"].get<int64_t>()));
      text += buf;
    }
    text += "\n\n";
    report["task_eval"] = {{"file_sha256", Sha256Hex(*eval_text)},
                           {"learned", TaskReportJson(e.model)},
                           {"learned_tools_removed", TaskReportJson(bare.model)},
                           {"heuristic", TaskReportJson(e.heuristic)},
                           {"per_source", e.per_source}};
  }
  const ComplexityEval ce = EvaluateComplexityRows(**model, c_test);
  text += ComplexityText("complexity, test split of the outcome labels", ce) + "\n";
  report["complexity_test"] = ComplexityJson(ce);
  if (!o.complexity_eval_data.empty()) {
    absl::StatusOr<std::string> eval_text = ReadWholeFile(o.complexity_eval_data);
    if (!eval_text.ok()) return eval_text.status();
    absl::StatusOr<std::vector<LoadedOutcome>> rows =
        ReadOutcomes(*eval_text, o.complexity_eval_data);
    if (!rows.ok()) return rows.status();
    const ComplexityEval me = EvaluateComplexityRows(**model, *rows);
    text +=
        ComplexityText("complexity, out-of-source outcomes (" + o.complexity_eval_data + ")", me) +
        "\n";
    report["complexity_eval"] = ComplexityJson(me);
  }
  char platt_text[128];
  std::snprintf(platt_text, sizeof(platt_text), "complexity calibration: platt a=%.4f b=%.4f\n",
                params.platt_a, params.platt_b);
  text += platt_text;

  // The model file carries the headline figures.
  json summary = json::object();
  if (report.contains("task_heldout")) {
    summary["heldout_macro_f1"] = report["task_heldout"]["learned"]["macro_f1"];
  }
  if (report.contains("task_eval")) {
    const json& l = report["task_eval"]["learned"];
    summary["eval_macro_f1"] = l["macro_f1"];
    summary["eval_tool_recall"] = l["tool_recall"];
    summary["eval_tool_false_positive_rate"] = l["tool_false_positive_rate"];
    summary["eval_tools_removed_macro_f1"] =
        report["task_eval"]["learned_tools_removed"]["macro_f1"];
    summary["eval_tools_removed_tool_recall"] =
        report["task_eval"]["learned_tools_removed"]["tool_recall"];
  }
  summary["complexity_apgr"] = ce.learned.apgr;
  summary["complexity_apgr_heuristic"] = ce.heuristic.apgr;
  summary["complexity_apgr_length"] = ce.length.apgr;
  params.info.report_json = summary.dump();
  result.params = std::move(params);
  result.report = std::move(report);
  result.text_report = std::move(text);
  return result;
}

}  // namespace tiermesh::classifier
