#include "tools/classifier/training.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "services/classifier/model.h"
#include "services/classifier/sha256.h"

namespace tiermesh::classifier {
namespace {

std::vector<size_t> Order(size_t n, SplitMix64* rng) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng->Below(i)]);
  return order;
}

constexpr double kEpsilon = 1e-8;

std::vector<bool> FrozenMask(const SgdOptions& options, size_t rows) {
  std::vector<bool> frozen(rows, false);
  for (uint32_t i : options.frozen) {
    if (i < rows) frozen[i] = true;
  }
  return frozen;
}

}  // namespace

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double StableFraction(std::string_view key, uint64_t seed) {
  Sha256 h;
  const uint64_t le = seed;
  h.Update(std::string_view(reinterpret_cast<const char*>(&le), sizeof(le)));
  h.Update(key);
  const Sha256::Digest d = h.Finish();
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | d[i];
  return static_cast<double>(v >> 11) / static_cast<double>(uint64_t{1} << 53);
}

void TrainSoftmax(const std::vector<SparseExample>& data, const SgdOptions& options,
                  uint32_t bias_index, std::vector<float>* weights) {
  std::vector<float>& w = *weights;
  std::vector<float> g2(w.size(), 0.0f);
  const std::vector<bool> frozen = FrozenMask(options, w.size() / kWeightStride);
  SplitMix64 rng(options.seed);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (size_t idx : Order(data.size(), &rng)) {
      const SparseExample& ex = data[idx];
      double z[kNumTasks] = {0, 0, 0, 0, 0};
      for (const Feature& f : ex.features) {
        const float* row = &w[size_t{f.index} * kWeightStride];
        for (int c = 0; c < kNumTasks; ++c) z[c] += row[c] * f.value;
      }
      const double m = *std::max_element(z, z + kNumTasks);
      double sum = 0;
      for (double& v : z) {
        v = std::exp(v - m);
        sum += v;
      }
      double grad[kNumTasks];
      for (int c = 0; c < kNumTasks; ++c) {
        grad[c] = (z[c] / sum - (c == ex.label ? 1.0 : 0.0)) * ex.weight;
      }
      for (const Feature& f : ex.features) {
        if (frozen[f.index]) continue;
        const double l2 = f.index == bias_index ? 0 : options.l2;
        for (int c = 0; c < kNumTasks; ++c) {
          const size_t k = size_t{f.index} * kWeightStride + c;
          const double g = grad[c] * f.value + l2 * w[k];
          g2[k] += static_cast<float>(g * g);
          w[k] -= static_cast<float>(options.learning_rate * g / (std::sqrt(g2[k]) + kEpsilon));
        }
      }
    }
  }
}

void TrainLogistic(const std::vector<SparseExample>& data, const SgdOptions& options,
                   uint32_t bias_index, std::vector<float>* weights) {
  std::vector<float>& w = *weights;
  std::vector<float> g2(w.size() / kWeightStride, 0.0f);
  const std::vector<bool> frozen = FrozenMask(options, w.size() / kWeightStride);
  SplitMix64 rng(options.seed);
  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    for (size_t idx : Order(data.size(), &rng)) {
      const SparseExample& ex = data[idx];
      double z = 0;
      for (const Feature& f : ex.features) {
        z += w[size_t{f.index} * kWeightStride + kComplexityColumn] * f.value;
      }
      const double p = 1.0 / (1.0 + std::exp(-z));
      const double grad = (p - ex.label) * ex.weight;
      for (const Feature& f : ex.features) {
        if (frozen[f.index]) continue;
        const size_t k = size_t{f.index} * kWeightStride + kComplexityColumn;
        const double l2 = f.index == bias_index ? 0 : options.l2;
        const double g = grad * f.value + l2 * w[k];
        g2[f.index] += static_cast<float>(g * g);
        w[k] -= static_cast<float>(options.learning_rate * g / (std::sqrt(g2[f.index]) + kEpsilon));
      }
    }
  }
}

Platt FitPlatt(const std::vector<double>& scores, const std::vector<int>& labels) {
  const size_t n = std::min(scores.size(), labels.size());
  double positives = 0;
  for (size_t i = 0; i < n; ++i) positives += labels[i] != 0 ? 1 : 0;
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return {};
  const double hi = (positives + 1) / (positives + 2);
  const double lo = 1 / (negatives + 2);
  const auto target = [&](size_t i) { return labels[i] != 0 ? hi : lo; };
  const auto loss = [&](double a, double b) {
    double l = 0;
    for (size_t i = 0; i < n; ++i) {
      const double z = a * scores[i] + b;
      // log(1 + e^z) - t z, computed stably.
      l += (z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z))) - target(i) * z;
    }
    return l;
  };
  double a = 1;
  double b = 0;
  double current = loss(a, b);
  for (int iteration = 0; iteration < 100; ++iteration) {
    double ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
    for (size_t i = 0; i < n; ++i) {
      const double p = 1 / (1 + std::exp(-(a * scores[i] + b)));
      const double d = p - target(i);
      const double v = p * (1 - p);
      ga += d * scores[i];
      gb += d;
      haa += v * scores[i] * scores[i];
      hab += v * scores[i];
      hbb += v;
    }
    const double det = haa * hbb - hab * hab;
    if (!(std::fabs(det) > 1e-18)) break;
    const double da = (hbb * ga - hab * gb) / det;
    const double db = (haa * gb - hab * ga) / det;
    double step = 1;
    double next = loss(a - da, b - db);
    while (next > current && step > 1e-6) {  // backtracking keeps Newton from overshooting
      step /= 2;
      next = loss(a - step * da, b - step * db);
    }
    if (next > current) break;
    a -= step * da;
    b -= step * db;
    const bool converged = current - next < 1e-12 * (1 + current);
    current = next;
    if (converged) break;
  }
  if (!std::isfinite(a) || !std::isfinite(b)) return {};
  return {a, b};
}

}  // namespace tiermesh::classifier
