// Model fitting for the classifier trainer: multinomial logistic regression
// (task type) and binary logistic regression (complexity), both trained with
// AdaGrad and L2 on sparse features, plus Platt calibration. Deterministic:
// the same data, options and seed give bit-identical weights.
//
//   std::vector<SparseExample> train = ...;              // features + label + weight
//   TrainSoftmax(train, SgdOptions{}, bias, &params.weights);     // columns 0..4
//   TrainLogistic(complexity, SgdOptions{}, bias, &params.weights);  // column 5
//   Platt p = FitPlatt(raw_scores, labels);
#ifndef TIERMESH_TOOLS_CLASSIFIER_TRAINING_H_
#define TIERMESH_TOOLS_CLASSIFIER_TRAINING_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "services/classifier/features.h"

namespace tiermesh::classifier {

struct SparseExample {
  std::vector<Feature> features;
  int label = 0;     // task: class index 0..4; complexity: 0 or 1
  float weight = 1;  // loss weight (class balancing)
};

struct SgdOptions {
  int epochs = 12;
  double learning_rate = 0.2;  // AdaGrad base step
  double l2 = 1e-5;            // L2 strength, applied to the features of each example
  uint64_t seed = 1;           // example order
  // Feature indices whose weights stay as they are (not learned).
  std::vector<uint32_t> frozen;
};

// Fits columns [0, kNumTasks) of `weights` (row-major, kWeightStride per
// feature). `bias_index` is exempt from L2.
void TrainSoftmax(const std::vector<SparseExample>& data, const SgdOptions& options,
                  uint32_t bias_index, std::vector<float>* weights);
// Fits column kComplexityColumn.
void TrainLogistic(const std::vector<SparseExample>& data, const SgdOptions& options,
                   uint32_t bias_index, std::vector<float>* weights);

struct Platt {
  double a = 1;
  double b = 0;
};
// Fits p = sigmoid(a * score + b) by Newton's method with Platt's smoothed
// targets. Falls back to (1, 0) when a class is missing.
Platt FitPlatt(const std::vector<double>& scores, const std::vector<int>& labels);

// A stable pseudo-random number in [0, 1) for `key`: used to split rows
// into train / calibration / held-out independently of file order.
double StableFraction(std::string_view key, uint64_t seed);

// Deterministic SplitMix64 generator (std::shuffle's output is
// implementation-defined, so it is not used).
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n).
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

}  // namespace tiermesh::classifier

#endif  // TIERMESH_TOOLS_CLASSIFIER_TRAINING_H_
