// tiermesh-classify: classifies a JSONL file of prompts offline.
//
//   tiermesh-classify --input prompts.jsonl --output verdicts.jsonl [--model FILE]
//       [--mode learned|heuristic] [--details]
//
// Each input line is a JSON object with `text` or `messages` (and optional
// `tools`, `id`); each output line, in the same order, has the input's `id`
// (when present) plus `task`, `complexity`, `confidence` and `pii`. With
// --details it also has `probabilities`, `pii_kinds`, `approx_tokens`,
// `reasons` and `model_version`. A bad line stops the run with its line
// number; the output file is only replaced when every line succeeded.
#include <fstream>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "services/classifier/classifier.h"
#include "tools/classifier/file_util.h"
#include "tools/classifier/request_json.h"

#ifndef TIERMESH_DEFAULT_CLASSIFIER_MODEL
#define TIERMESH_DEFAULT_CLASSIFIER_MODEL "models/classifier/default.tmcl"
#endif

ABSL_FLAG(std::string, input, "", "JSONL file to classify ('-' for stdin)");
ABSL_FLAG(std::string, output, "", "JSONL file to write ('-' for stdout)");
ABSL_FLAG(std::string, model, TIERMESH_DEFAULT_CLASSIFIER_MODEL, "classifier model file");
ABSL_FLAG(std::string, mode, "learned", "learned or heuristic");
ABSL_FLAG(bool, details, false, "also write probabilities, PII kinds, tokens and reasons");
ABSL_FLAG(uint64_t, max_request_bytes, tiermesh::classifier::kDefaultMaxRequestBytes,
          "per-line request size limit");

namespace tiermesh::classifier {
namespace {

using nlohmann::json;

json VerdictJson(const std::string& id, const Classification& c, bool details) {
  json out = json::object();
  if (!id.empty()) out["id"] = id;
  out["task"] = std::string(TaskName(c.task));
  out["complexity"] = c.complexity;
  out["confidence"] = c.confidence;
  out["pii"] = c.pii_detected;
  if (details) {
    json probabilities = json::object();
    for (int i = 0; i < kNumTasks; ++i) {
      probabilities[std::string(TaskName(kTaskOrder[i]))] = c.probabilities[i];
    }
    out["probabilities"] = probabilities;
    out["pii_kinds"] = c.pii_kinds;
    out["approx_tokens"] = c.approx_tokens;
    json reasons = json::array();
    for (const Reason& r : c.reasons)
      reasons.push_back({{"feature", r.feature}, {"weight", r.weight}});
    out["reasons"] = reasons;
    out["model_version"] = c.model_version;
  }
  return out;
}

absl::Status Run() {
  const std::string input_path = absl::GetFlag(FLAGS_input);
  const std::string output_path = absl::GetFlag(FLAGS_output);
  if (input_path.empty() || output_path.empty()) {
    return absl::InvalidArgumentError("--input and --output are required");
  }
  ClassifierOptions options;
  const std::optional<ClassifierMode> mode = ClassifierModeFromName(absl::GetFlag(FLAGS_mode));
  if (!mode.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--mode must be learned or heuristic, got ", absl::GetFlag(FLAGS_mode)));
  }
  options.mode = *mode;
  options.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  std::shared_ptr<ModelStore> store;
  if (options.mode == ClassifierMode::kLearned) {
    absl::StatusOr<std::unique_ptr<ModelStore>> opened =
        ModelStore::Open(absl::GetFlag(FLAGS_model));
    if (!opened.ok()) return opened.status();
    store = *std::move(opened);
  }
  const Classifier classifier(options, store);
  const bool details = absl::GetFlag(FLAGS_details);

  std::ifstream file;
  std::istream* in = &std::cin;
  if (input_path != "-") {
    file.open(input_path);
    if (!file) return absl::NotFoundError(absl::StrCat(input_path, ": cannot open"));
    in = &file;
  }
  std::string out;
  std::string line;
  int64_t line_number = 0;
  int64_t rows = 0;
  while (std::getline(*in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(input_path, ":", line_number, ": ", what));
    };
    const json object = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) return error("not valid JSON");
    absl::StatusOr<OwnedRequest> request = ParseRequest(object);
    if (!request.ok()) return error(request.status().message());
    absl::StatusOr<Classification> verdict = classifier.Classify(request->View());
    if (!verdict.ok()) return error(verdict.status().message());
    out += VerdictJson(request->id, *verdict, details)
               .dump(-1, ' ', false, json::error_handler_t::replace);
    out.push_back('\n');
    ++rows;
  }
  if (in->bad()) return absl::InternalError(absl::StrCat(input_path, ": read error"));
  if (output_path == "-") {
    std::cout << out;
  } else if (absl::Status s = WriteWholeFile(output_path, out); !s.ok()) {
    return s;
  }
  std::cerr << "tiermesh-classify: " << rows << " rows classified ("
            << ClassifierModeName(options.mode) << ")\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace tiermesh::classifier

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Classifies prompts offline.\n"
      "  tiermesh-classify --input FILE.jsonl --output FILE.jsonl [--model FILE]");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = tiermesh::classifier::Run();
  if (!status.ok()) {
    std::cerr << "tiermesh-classify: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
