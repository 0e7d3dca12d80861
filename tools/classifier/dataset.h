// Assembles the classifier's training and evaluation sets from the public
// sources in datasets/classifier/ (see its README for formats and licences)
// and from tiermesh's own files in tools/classifier/data/. Every reader takes
// a file's contents and returns labelled rows, so the rules are testable
// without the files. The label rules (which upstream category becomes which
// task) are documented in tools/classifier/README.md.
//
//   ASSIGN_OR_RETURN(std::vector<LabeledRow> rows, ReadClinc(contents, ClincOptions{}));
//   DatasetBuilder b;  b.AddTraining(rows);  b.AddEvaluation(eval_rows);
//   b.training();  b.evaluation();   // de-duplicated by normalised text
#ifndef TIERMESH_TOOLS_CLASSIFIER_DATASET_H_
#define TIERMESH_TOOLS_CLASSIFIER_DATASET_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

#include "tools/classifier/request_json.h"

namespace tiermesh::classifier {

// A prompt with a task label.
struct LabeledRow {
  OwnedRequest request;
  std::string label;    // "chat", "tool", "code", "math", "reasoning"
  std::string source;   // "clinc150", "gsm8k", ...
  std::string license;  // "MIT", "Apache-2.0", "CC BY 3.0", "CC0-1.0"
  std::string group;    // sub-source: CLINC intent, BBH task, MMLU subject, ...
};

// A prompt with weak/strong model outcomes (complexity label).
struct OutcomeRow {
  OwnedRequest request;
  int needs_strong = 0;
  double weak = 0;    // 0..1
  double strong = 0;  // 0..1
  std::string source;
  std::string license;
  std::string group;
};

// Lower-case ASCII, runs of anything but letters/digits/non-ASCII become one
// space, trimmed. Two prompts with the same key are duplicates.
std::string NormalizeForDedup(std::string_view text);
// First 16 hex digits of SHA-256 of `text`: the key of hand-label files.
std::string TextKey(std::string_view text);

// Hand labels: lines "<label>\t<TextKey>\t<excerpt>"; '#' starts a comment.
// Labels are a task name or "skip".
[[nodiscard]] absl::StatusOr<std::map<std::string, std::string>> ParseLabelFile(
    std::string_view contents, std::string_view file_name);

// Keeps at most `cap` rows per group, choosing them by a stable hash of the
// text (not file order), so re-running picks the same rows.
std::vector<LabeledRow> CapPerGroup(std::vector<LabeledRow> rows, size_t cap, uint64_t seed);

// --- Training sources -------------------------------------------------------
// CLINC150 data_full.json (all splits pooled): intents mapped to chat / tool
// / math; `cap_*` rows per intent.
struct ClincOptions {
  size_t cap_chat = 40;
  size_t cap_tool = 12;
  size_t cap_math = 80;
  uint64_t seed = 1;
};
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadClinc(std::string_view contents,
                                                                const ClincOptions& options);
// The CLINC intent -> task table ("" for intents that are not used).
std::string_view ClincIntentLabel(std::string_view intent);

// GSM8K train.jsonl: `question` -> math (first `cap` by stable hash).
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadGsm8k(std::string_view contents,
                                                                size_t cap, uint64_t seed);
// MetaTool Task1.json: positives -> tool; negatives -> the hand label in
// `negative_labels` (default chat; "skip" drops the row).
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadMetaTool(
    std::string_view contents, const std::map<std::string, std::string>& negative_labels);
// One BIG-Bench Hard task file; `task` is the file's base name.
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadBbhTask(std::string_view contents,
                                                                  std::string_view task, size_t cap,
                                                                  uint64_t seed);
std::string_view BbhTaskLabel(std::string_view task);
// routing_mmlu.jsonl rows of the subjects with a task label.
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadMmluTasks(std::string_view contents,
                                                                    size_t cap_per_subject,
                                                                    uint64_t seed);
std::string_view MmluSubjectLabel(std::string_view subject);
// taskset_train.jsonl rows whose `source` is in `sources`.
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadTaskset(
    std::string_view contents, const std::set<std::string>& sources);
// tiermesh's own labelled JSONL (`text`/`messages`, `label`, `source`,
// `license`).
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadLabeledJsonl(std::string_view contents,
                                                                       std::string_view file_name);

// --- Evaluation sources (never used for training) ----------------------------
// MT-Bench question.jsonl: first turn, category -> task.
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadMtBench(std::string_view contents);
std::string_view MtBenchCategoryLabel(std::string_view category);
// Self-Instruct user_oriented_instructions.jsonl: instruction + first
// instance input; label from `labels` (default chat).
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadSelfInstruct(
    std::string_view contents, const std::map<std::string, std::string>& labels);
// A BFCL live_* question file: the user (and system) turns with the offered
// functions as tools -> tool.
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadBfcl(std::string_view contents,
                                                               std::string_view category);
// A BFCL irrelevance / live_irrelevance question file: the first user
// message alone, WITHOUT the offered functions (they were chosen not to fit),
// labelled by content from `labels` (keyed by TextKey of that message; "skip"
// drops a row). A row without a label is an error: the label file must cover
// the whole file. Source "bfcl_irrelevance".
[[nodiscard]] absl::StatusOr<std::vector<LabeledRow>> ReadBfclIrrelevance(
    std::string_view contents, std::string_view category,
    const std::map<std::string, std::string>& labels);

// --- Complexity ---------------------------------------------------------------
// routing_{gsm8k,mmlu,mt_bench}.jsonl. MT-Bench judge scores (1..10) are
// scaled to 0..1.
[[nodiscard]] absl::StatusOr<std::vector<OutcomeRow>> ReadRouting(std::string_view contents,
                                                                  std::string_view file_name);

// De-duplicates across everything added; evaluation rows that duplicate a
// training row are dropped (and counted) so evaluation stays out-of-sample.
class DatasetBuilder {
 public:
  void AddTraining(std::vector<LabeledRow> rows);
  void AddEvaluation(std::vector<LabeledRow> rows);
  const std::vector<LabeledRow>& training() const { return training_; }
  const std::vector<LabeledRow>& evaluation() const { return evaluation_; }
  int64_t duplicates_dropped() const { return duplicates_; }
  int64_t evaluation_overlaps_dropped() const { return overlaps_; }

 private:
  std::set<std::string> train_keys_;
  std::set<std::string> eval_keys_;
  std::vector<LabeledRow> training_;
  std::vector<LabeledRow> evaluation_;
  int64_t duplicates_ = 0;
  int64_t overlaps_ = 0;
};

// JSONL line for a row (request fields + label/source/license/group).
nlohmann::json LabeledRowJson(const LabeledRow& row);
nlohmann::json OutcomeRowJson(const OutcomeRow& row);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_TOOLS_CLASSIFIER_DATASET_H_
