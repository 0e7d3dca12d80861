#include "services/classifier/classifier.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"

#include "services/classifier/features.h"
#include "services/classifier/heuristic.h"

namespace tiermesh::classifier {
namespace {

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
  });
}

// Keeps the k largest (score, index) pairs seen.
class TopK {
 public:
  explicit TopK(int k) : k_(std::max(0, k)) { items_.reserve(k_ + 1); }
  void Offer(float score, size_t index) {
    if (k_ == 0) return;
    if (static_cast<int>(items_.size()) == k_ && score <= items_.back().first) return;
    auto pos =
        std::upper_bound(items_.begin(), items_.end(), score,
                         [](float s, const std::pair<float, size_t>& it) { return s > it.first; });
    items_.insert(pos, {score, index});
    if (static_cast<int>(items_.size()) > k_) items_.pop_back();
  }
  const std::vector<std::pair<float, size_t>>& items() const { return items_; }

 private:
  int k_;
  std::vector<std::pair<float, size_t>> items_;  // descending score
};

int32_t ClampTokens(int64_t tokens) {
  return static_cast<int32_t>(std::min<int64_t>(tokens, std::numeric_limits<int32_t>::max()));
}

void FillCommon(const ClassifyInput& input, Classification* c) {
  const PiiKinds pii = DetectRequestPii(input);
  c->pii_detected = pii.any();
  c->pii_kinds = PiiKindNames(pii);
}

}  // namespace

std::string_view ClassifierModeName(ClassifierMode mode) {
  return mode == ClassifierMode::kHeuristic ? "heuristic" : "learned";
}

std::optional<ClassifierMode> ClassifierModeFromName(std::string_view name) {
  if (name == "learned") return ClassifierMode::kLearned;
  if (name == "heuristic") return ClassifierMode::kHeuristic;
  return std::nullopt;
}

absl::Status ValidateInput(const ClassifyInput& input, size_t max_request_bytes) {
  if (input.messages.empty()) {
    return absl::InvalidArgumentError("request has no messages (and no text) to classify");
  }
  size_t bytes = 0;
  bool any_text = false;
  for (const MessageView& m : input.messages) {
    bytes += m.content.size();
    any_text = any_text || !IsBlank(m.content);
  }
  for (const ToolView& t : input.tools) {
    bytes += t.name.size() + t.description.size() + t.parameters_json_schema.size();
  }
  if (bytes > max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "request has ", bytes, " bytes of text, over the limit of ", max_request_bytes, " bytes"));
  }
  if (!any_text) {
    return absl::InvalidArgumentError("request text is empty (every message is blank)");
  }
  return absl::OkStatus();
}

PiiKinds DetectRequestPii(const ClassifyInput& input) {
  PiiKinds kinds;
  for (const MessageView& m : input.messages) kinds |= DetectPii(m.content);
  return kinds;
}

Classification ClassifyWithModel(const Model& model, const ClassifyInput& input, int max_reasons) {
  const FeatureExtractor& extractor = model.extractor();
  ScoredRequest scored;
  const Model::Scores scores = model.ScoreRequest(input, &scored);

  Classification c;
  float max_logit = scores.logits[0];
  for (float l : scores.logits) max_logit = std::max(max_logit, l);
  double sum = 0;
  std::array<double, kNumTasks> e{};
  for (int i = 0; i < kNumTasks; ++i) {
    e[i] = std::exp(static_cast<double>(scores.logits[i]) - max_logit);
    sum += e[i];
  }
  int best = 0;
  for (int i = 0; i < kNumTasks; ++i) {
    c.probabilities[i] = static_cast<float>(e[i] / sum);
    if (c.probabilities[i] > c.probabilities[best]) best = i;
  }
  c.task = kTaskOrder[best];
  c.confidence = c.probabilities[best];
  c.complexity = model.Calibrate(scores.complexity_logit);
  c.approx_tokens = ClampTokens(scored.stats.approx_tokens);
  c.model_version = model.version();
  FillCommon(input, &c);
  if (max_reasons <= 0) return c;

  // Reasons: a feature's pull towards `best` relative to the mean class
  // (softmax is shift-invariant, so this is its real effect), and its
  // calibrated log-odds contribution to complexity. The strongest single
  // occurrences are kept, then occurrences of the same feature among them
  // are merged.
  const uint32_t base = extractor.config().num_buckets();
  const uint32_t bias = base + static_cast<uint32_t>(Structural::kBias);
  const float platt_a = model.params().platt_a;
  struct Candidate {
    float strength;
    uint32_t index;
    float pull;
    float complexity;
    FeatureOrigin origin;
    bool operator>(const Candidate& o) const { return strength > o.strength; }
  };
  const size_t keep = static_cast<size_t>(max_reasons) + 4;
  std::vector<Candidate> heap;  // min-heap on strength
  heap.reserve(keep + 1);
  const auto offer = [&](uint32_t index, float value, const float* row,
                         const FeatureOrigin& origin) {
    const float pull = (row[best] - row[kMeanTaskColumn]) * value;
    const float cx = row[kComplexityColumn] * value * platt_a;
    const float strength = std::max(pull, std::fabs(cx));
    if (heap.size() == keep && strength <= heap.front().strength) return;
    heap.push_back({strength, index, pull, cx, origin});
    std::push_heap(heap.begin(), heap.end(), std::greater<Candidate>());
    if (heap.size() > keep) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<Candidate>());
      heap.pop_back();
    }
  };
  for (const Occurrence& occ : scored.occurrences) {
    // Never echo personal data: with PII in the request, words and bigrams
    // (which could be part of an address or a name) are not named.
    if (c.pii_detected && occ.origin.kind != FeatureOrigin::kSymbol) continue;
    offer(occ.index, occ.weight * scored.family_scale[FamilyOf(occ.origin)], occ.row.data(),
          occ.origin);
  }
  const float* rows = model.rows();
  for (const Feature& f : scored.structural) {
    if (f.index == bias) continue;
    offer(f.index, f.value, rows + size_t{f.index} * ScoredRequest::kColumns,
          FeatureOrigin{FeatureOrigin::kStructural, false, false, 0, f.index - base});
  }
  std::vector<Candidate> candidates;
  for (const Candidate& cand : heap) {
    auto it = std::find_if(candidates.begin(), candidates.end(),
                           [&](const Candidate& x) { return x.index == cand.index; });
    if (it == candidates.end()) {
      candidates.push_back(cand);
    } else {
      it->pull += cand.pull;
      it->complexity += cand.complexity;
    }
  }
  TopK task_top(max_reasons);
  TopK complexity_top(2);
  for (size_t k = 0; k < candidates.size(); ++k) {
    if (candidates[k].pull > 0) task_top.Offer(candidates[k].pull, k);
    complexity_top.Offer(std::fabs(candidates[k].complexity), k);
  }
  for (const auto& [pull, k] : task_top.items()) {
    c.reasons.push_back({extractor.OriginName(candidates[k].origin, scored.text), pull});
  }
  for (const auto& [magnitude, k] : complexity_top.items()) {
    if (magnitude < 0.05f) continue;  // too small to be a reason
    c.reasons.push_back(
        {absl::StrCat("complexity:", extractor.OriginName(candidates[k].origin, scored.text)),
         candidates[k].complexity});
  }
  std::stable_sort(c.reasons.begin(), c.reasons.end(), [](const Reason& a, const Reason& b) {
    return std::fabs(a.weight) > std::fabs(b.weight);
  });
  return c;
}

Classification ClassifyWithHeuristic(const ClassifyInput& input) {
  const HeuristicVerdict v = ClassifyHeuristic(input);
  Classification c;
  c.task = v.task;
  c.probabilities = v.probabilities;
  c.confidence = v.probabilities[TaskIndex(v.task)];
  c.complexity = v.complexity;
  c.reasons = v.reasons;
  c.model_version = "heuristic";
  c.approx_tokens = ClampTokens(ApproxRequestTokens(input));
  FillCommon(input, &c);
  return c;
}

Classifier::Classifier(ClassifierOptions options, std::shared_ptr<ModelStore> models)
    : options_(options), models_(std::move(models)) {}

absl::StatusOr<Classification> Classifier::Classify(const ClassifyInput& input) const {
  if (absl::Status s = ValidateInput(input, options_.max_request_bytes); !s.ok()) return s;
  if (options_.mode == ClassifierMode::kHeuristic) return ClassifyWithHeuristic(input);
  std::shared_ptr<const Model> model = models_ != nullptr ? models_->current() : nullptr;
  if (model == nullptr) {
    return absl::FailedPreconditionError("learned mode but no classifier model is loaded");
  }
  return ClassifyWithModel(*model, input, options_.max_reasons);
}

}  // namespace tiermesh::classifier
