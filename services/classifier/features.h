// Feature extraction for the classifier's linear models: hashed word unigrams
// and bigrams, hashed character n-grams inside words, hashed punctuation
// symbols, and a fixed list of named structural features (length, code
// fences, math symbols, questions, list markers, turns, tools offered, script
// and language of the text). Works on any bytes: invalid UTF-8 separates words
// and never stops the scan.
//
//   FeatureExtractor extractor(FeatureConfig{});   // immutable, thread-safe
//   FeatureVector fv = extractor.Extract(input);   // ClassifyInput
//   for (const Feature& f : fv.features) score += w[f.index] * f.value;
//   std::string why = extractor.FeatureName(fv, 0);  // "word:weather"
//
// Index space: hashed features use [0, 2^hash_bits); structural feature s
// uses 2^hash_bits + s. The hashing is fixed (FNV-1a words, packed bytes for
// character n-grams, a 64-bit finaliser) so a model file trained on one
// machine scores the same everywhere.
#ifndef TIERMESH_SERVICES_CLASSIFIER_FEATURES_H_
#define TIERMESH_SERVICES_CLASSIFIER_FEATURES_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

#include "services/classifier/types.h"

namespace tiermesh::classifier {

// The named structural features, in index order. Stored by name in model
// files: a file whose list differs from this one is refused.
enum class Structural : uint32_t {
  kBias = 0,
  kLenLog,
  kTotalLenLog,
  kWordsLog,
  kCodeFence,
  kInlineCode,
  kCodeSymbols,
  kIndentedLines,
  kMathSymbols,
  kDigitRatio,
  kEquation,
  kQuestionsLog,
  kMultiQuestion,
  kEndsWithQuestion,
  kListMarkers,
  kNewlinesLog,
  kTurnsLog,
  kMessagesLog,
  kHasSystem,
  kHasToolCalls,
  kToolsOffered,
  kToolsCountLog,
  kUrl,
  kNonAsciiRatio,
  kUppercaseRatio,
  kContextLenLog,
  kScriptLatin,  // kScriptLatin + (Script - 1) for each non-kOther script
  kScriptLast = kScriptLatin + 9,
  kLangEn,
  kLangEs,
  kLangFr,
  kLangDe,
  kLangPt,
  kLangIt,
  kCount,
};
inline constexpr uint32_t kNumStructural = static_cast<uint32_t>(Structural::kCount);

// Name of structural feature `index` (< kNumStructural), e.g. "tools_offered".
std::string_view StructuralName(uint32_t index);
// All names in index order.
std::vector<std::string> StructuralNames();

// How hashed features are formed; stored in the model file.
struct FeatureConfig {
  // Number of hash buckets = 2^hash_bits (10..24).
  uint32_t hash_bits = 16;
  // Mixed into every hash, so models with different seeds never share buckets.
  uint64_t seed = 0x7469657232303236ULL;
  // Character n-gram sizes inside "^word$" (bytes, 2..7; min 0 disables).
  uint32_t char_ngram_min = 4;
  uint32_t char_ngram_max = 4;
  bool word_bigrams = true;
  // Weight of user/system turns before the last user turn (the last is 1).
  float context_weight = 0.5f;
  // Bytes of each message that feed hashed features: the first
  // `head_bytes` and the last `tail_bytes` (structural features always see
  // the whole text). Bounds the cost of very long prompts.
  uint32_t head_bytes = 12288;
  uint32_t tail_bytes = 4096;

  // INVALID_ARGUMENT naming the bad field when out of range.
  [[nodiscard]] absl::Status Validate() const;
  uint32_t num_buckets() const { return 1u << hash_bits; }
  // Total feature index space (buckets + structural).
  uint32_t num_features() const { return num_buckets() + kNumStructural; }
};

// Hashed features are normalised per family: the four kinds (words,
// bigrams, character n-grams, symbols) times focus/context turn.
inline constexpr int kNumFamilies = 8;

// One non-zero feature. Within a FeatureVector an index appears at most once
// per family (kNumFamilies: words, bigrams, character n-grams, symbols, each
// from the focus turn or the context), so that colliding features of two
// families are scaled by their own family's count, as in Score().
struct Feature {
  uint32_t index = 0;
  float value = 0;
};

// Where a hashed feature came from, so it can be named ("word:weather").
struct FeatureOrigin {
  enum Kind : uint8_t { kWord = 0, kBigram, kChars, kSymbol, kStructural };
  Kind kind = kWord;
  bool at_word_start = false;  // char n-gram begins with the "^" padding
  bool at_word_end = false;    // char n-gram ends with the "$" padding
  uint16_t length = 0;         // bytes in FeatureVector::text
  uint32_t offset = 0;
  bool context = false;  // from an earlier turn (not the last user turn)
};

// Raw counts over the whole request, for callers that need them (the
// heuristic, reasons, tests).
struct TextStats {
  int64_t focus_bytes = 0;  // the last user message
  int64_t total_bytes = 0;  // every message
  int64_t focus_words = 0;
  int64_t question_marks = 0;
  int64_t newlines = 0;
  int64_t code_fences = 0;
  int64_t user_turns = 0;
  int64_t approx_tokens = 0;  // messages + tools
  // Letters per script (index = Script).
  std::array<int64_t, 11> script_letters{};
};

struct FeatureVector {
  std::vector<Feature> features;       // unique (index, family), in first-seen order
  std::vector<FeatureOrigin> origins;  // parallel to `features`
  std::string text;                    // normalised text the origins point into
  TextStats stats;
};

// One occurrence of a hashed feature, as the single-pass scorer sees it.
struct Occurrence {
  // The feature's weight row (tasks, complexity, mean task weight, padding),
  // copied while scoring so that computing reasons needs no second random
  // access into the weights.
  alignas(32) std::array<float, 8> row;
  uint32_t index;
  float weight;  // the message's weight (1 for the focus turn)
  FeatureOrigin origin;
};

inline int FamilyOf(const FeatureOrigin& o) { return o.kind + (o.context ? 4 : 0); }

// Result of FeatureExtractor::Score: the request scored in one pass.
struct ScoredRequest {
  static constexpr int kColumns = 8;  // weight rows are padded to 8 floats
  // Sum over features of row * value. Only the model's columns are
  // meaningful; padding columns hold whatever the rows hold.
  std::array<float, kColumns> totals{};
  std::vector<Occurrence> occurrences;  // hashed features in text order (for reasons)
  // Value of an occurrence = weight * family_scale[FamilyOf(origin)].
  std::array<float, kNumFamilies> family_scale{};
  std::vector<Feature> structural;  // structural features (index, value)
  std::string text;                 // normalised text the origins point into
  TextStats stats;
};

// Approximate token count of the whole request (messages + tools): ~4 ASCII
// bytes per token, one per CJK character, plus per-message/per-tool overhead.
int64_t ApproxRequestTokens(const ClassifyInput& input);

// Feature values. Each hashed family (words, bigrams, character n-grams,
// symbols; separately for the last user turn and for earlier user/system
// turns) is scaled by 1/sqrt(its number of occurrences), so a prompt whose
// tokens are all distinct has a unit-norm family and long and short prompts
// are comparable; occurrences in earlier turns are further weighted by
// `context_weight`. A long history therefore never dilutes the current turn.
class FeatureExtractor {
 public:
  // `config` must be valid (see FeatureConfig::Validate).
  explicit FeatureExtractor(const FeatureConfig& config);

  const FeatureConfig& config() const { return config_; }

  // Features of the whole request, merged by index (for training and
  // inspection). Never fails: empty input gives only the bias.
  FeatureVector Extract(const ClassifyInput& input) const;
  // Convenience: one user message.
  FeatureVector ExtractText(std::string_view text) const;

  // The serving path: scores `input` against `rows` (num_features() rows of
  // ScoredRequest::kColumns floats) in one pass without merging features.
  // out->totals equals the sum of rows[f.index] * f.value over
  // Extract(input).features, up to float rounding.
  void Score(const ClassifyInput& input, const float* rows, ScoredRequest* out) const;

  // Human-readable name of fv.features[i]: "word:weather",
  // "bigram:what is", "chars:^wea", "symbol:{", or a structural name.
  std::string FeatureName(const FeatureVector& fv, size_t i) const;
  // The same for an origin and the text it points into.
  std::string OriginName(const FeatureOrigin& origin, std::string_view text) const;

 private:
  template <typename Sink>
  void Run(const ClassifyInput& input, Sink* sink, std::string* text, TextStats* stats,
           std::array<int64_t, kNumFamilies>* family_counts,
           std::vector<Feature>* structural) const;
  // Bit mask of the languages whose stop-word list holds the word hash.
  uint8_t StopwordLanguages(uint64_t word_hash) const;

  FeatureConfig config_;
  std::vector<std::pair<uint64_t, uint8_t>> stopwords_;  // open addressing, power-of-two size
};

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_FEATURES_H_
