// The classifier facade: validates a request, then classifies it with the
// current learned model (`mode: learned`) or with the keyword baseline
// (`mode: heuristic`). Pure computation, safe to call from many threads.
//
//   ASSIGN_OR_RETURN(auto store, ModelStore::Open("models/classifier/default.tmcl"));
//   Classifier classifier(ClassifierOptions{}, std::move(store));  // learned mode
//   absl::StatusOr<Classification> c = classifier.Classify(input);
//   // INVALID_ARGUMENT: no messages, only empty text, or over max_request_bytes.
#ifndef TIERMESH_SERVICES_CLASSIFIER_CLASSIFIER_H_
#define TIERMESH_SERVICES_CLASSIFIER_CLASSIFIER_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "services/classifier/model.h"
#include "services/classifier/model_store.h"
#include "services/classifier/pii.h"
#include "services/classifier/types.h"

namespace tiermesh::classifier {

enum class ClassifierMode { kLearned, kHeuristic };

// "learned" / "heuristic".
std::string_view ClassifierModeName(ClassifierMode mode);
std::optional<ClassifierMode> ClassifierModeFromName(std::string_view name);

inline constexpr size_t kDefaultMaxRequestBytes = 256 * 1024;

struct ClassifierOptions {
  ClassifierMode mode = ClassifierMode::kLearned;
  // Limit on the request's text: message contents plus tool names,
  // descriptions and schemas.
  size_t max_request_bytes = kDefaultMaxRequestBytes;
  // Task reasons reported (complexity adds up to two more).
  int max_reasons = 5;
};

// INVALID_ARGUMENT when the request has no messages, only empty or
// whitespace-only text, or more than `max_request_bytes` of text.
[[nodiscard]] absl::Status ValidateInput(const ClassifyInput& input, size_t max_request_bytes);

// Personal data in any message of the request.
PiiKinds DetectRequestPii(const ClassifyInput& input);

// The learned verdict (no validation). Reasons: the `max_reasons` features
// that pushed most towards the chosen task ("word:weather"), plus up to two
// "complexity:<feature>" entries that moved complexity most; strongest first.
// Reasons name words, bigrams, symbols and structural features (character
// n-grams score but are not named); when the request contains personal data
// only symbols and structural features are named, so a reason never echoes
// it.
Classification ClassifyWithModel(const Model& model, const ClassifyInput& input, int max_reasons);
// The keyword baseline's verdict (no validation); model_version "heuristic".
Classification ClassifyWithHeuristic(const ClassifyInput& input);

class Classifier {
 public:
  // `models` may be null only in heuristic mode.
  Classifier(ClassifierOptions options, std::shared_ptr<ModelStore> models);

  [[nodiscard]] absl::StatusOr<Classification> Classify(const ClassifyInput& input) const;

  const ClassifierOptions& options() const { return options_; }
  // Null in heuristic mode.
  ModelStore* models() const { return models_.get(); }

 private:
  ClassifierOptions options_;
  std::shared_ptr<ModelStore> models_;
};

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_CLASSIFIER_H_
