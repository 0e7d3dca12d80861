// Helpers that every service uses to declare its Prometheus metrics the same
// way: names carry the "tiermesh_" prefix, registration errors come back as
// absl::Status (prometheus-cpp throws), and labelled children are created once
// and cached (prometheus::Family::Add takes a lock and hashes the whole label
// map on every call).
//
//   TIERMESH_ASSIGN_OR_RETURN(
//       auto requests,
//       metrics::NewCounterVec(registry, metrics::MetricName("router", "requests_total"),
//                              "Requests by tier and outcome.", {"tier", "outcome"}));
//   requests->Get({"local_small", "ok"}).Increment();
//
//   TIERMESH_ASSIGN_OR_RETURN(
//       auto duration,
//       metrics::NewHistogramVec(registry, "tiermesh_router_request_duration_seconds",
//                                "End-to-end latency.", {"tier"},
//                                metrics::LatencyBucketsSeconds()));
//   duration->Get({"cloud_cheap"}).Observe(1.25);
#ifndef TIERMESH_SERVICES_COMMON_METRICS_FAMILIES_H_
#define TIERMESH_SERVICES_COMMON_METRICS_FAMILIES_H_

#include <array>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace tiermesh::metrics {

inline constexpr absl::string_view kMetricPrefix = "tiermesh_";

// "tiermesh_<subsystem>_<name>", e.g. MetricName("router", "requests_total").
[[nodiscard]] std::string MetricName(absl::string_view subsystem, absl::string_view name);

// Latency buckets (seconds) sized for LLM traffic: from a 5 ms cache hit or
// classifier call up to a 2 minute long generation.
[[nodiscard]] const std::vector<double>& LatencyBucketsSeconds();
// Buckets for values in [0, 1] (complexity scores, ratios): 0.1 wide.
[[nodiscard]] const std::vector<double>& RatioBuckets();

// Checks a metric name: Prometheus syntax and the "tiermesh_" prefix.
[[nodiscard]] absl::Status ValidateMetricName(absl::string_view name);
// Checks label names: Prometheus syntax, not reserved ("__" prefix, "le"
// for histograms), no duplicates.
[[nodiscard]] absl::Status ValidateLabelNames(const std::vector<std::string>& label_names,
                                              bool is_histogram);
// Checks histogram bucket bounds: non-empty, finite and strictly increasing.
[[nodiscard]] absl::Status ValidateBuckets(const std::vector<double>& buckets);

// Register (or find, when the same name and type already exist) a family.
// INVALID_ARGUMENT for a bad name or a name already used by another type.
[[nodiscard]] absl::StatusOr<prometheus::Family<prometheus::Counter>*> AddCounterFamily(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help);
[[nodiscard]] absl::StatusOr<prometheus::Family<prometheus::Gauge>*> AddGaugeFamily(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help);
[[nodiscard]] absl::StatusOr<prometheus::Family<prometheus::Histogram>*> AddHistogramFamily(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help);

// A family with N fixed label names whose children are created on first use
// and then cached. Get() is thread-safe; the returned reference stays valid as
// long as the registry lives. Label VALUES must come from a bounded set
// (tiers, codes, model names from config), never from user input.
template <typename Metric, std::size_t N>
class MetricVec {
 public:
  using Values = std::array<absl::string_view, N>;

  MetricVec(prometheus::Family<Metric>* family, std::array<std::string, N> label_names,
            std::vector<double> buckets = {})
      : family_(family), label_names_(std::move(label_names)), buckets_(std::move(buckets)) {}

  MetricVec(const MetricVec&) = delete;
  MetricVec& operator=(const MetricVec&) = delete;

  // The child for these label values, in the order of the label names.
  Metric& Get(const Values& values) {
    Key key;
    for (std::size_t i = 0; i < N; ++i) key[i] = std::string(values[i]);
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = children_.find(key);
      if (it != children_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    auto it = children_.find(key);
    if (it != children_.end()) return *it->second;
    prometheus::Labels labels;
    for (std::size_t i = 0; i < N; ++i) labels.emplace(label_names_[i], key[i]);
    Metric* child = AddChild(labels);
    children_.emplace(std::move(key), child);
    return *child;
  }

  const std::array<std::string, N>& label_names() const { return label_names_; }

 private:
  using Key = std::array<std::string, N>;

  // Label names and buckets were validated when the MetricVec was created, so
  // prometheus-cpp's Add cannot throw here.
  Metric* AddChild(const prometheus::Labels& labels) {
    if constexpr (std::is_same_v<Metric, prometheus::Histogram>) {
      return &family_->Add(labels, buckets_);
    } else {
      return &family_->Add(labels);
    }
  }

  prometheus::Family<Metric>* const family_;
  const std::array<std::string, N> label_names_;
  const std::vector<double> buckets_;
  absl::Mutex mu_;
  absl::flat_hash_map<Key, Metric*> children_ ABSL_GUARDED_BY(mu_);
};

template <std::size_t N>
using CounterVec = MetricVec<prometheus::Counter, N>;
template <std::size_t N>
using GaugeVec = MetricVec<prometheus::Gauge, N>;
template <std::size_t N>
using HistogramVec = MetricVec<prometheus::Histogram, N>;

namespace internal {
template <std::size_t N>
std::array<std::string, N> ToArray(const char* const (&names)[N]) {
  std::array<std::string, N> out;
  for (std::size_t i = 0; i < N; ++i) out[i] = names[i];
  return out;
}
template <std::size_t N>
std::vector<std::string> ToVector(const std::array<std::string, N>& names) {
  return std::vector<std::string>(names.begin(), names.end());
}
}  // namespace internal

// Labelled families. The label count is fixed at compile time, so Get() can
// never be called with the wrong number of values.
template <std::size_t N>
[[nodiscard]] absl::StatusOr<std::unique_ptr<CounterVec<N>>> NewCounterVec(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help,
    const char* const (&label_names)[N]) {
  std::array<std::string, N> names = internal::ToArray(label_names);
  absl::Status labels_ok = ValidateLabelNames(internal::ToVector(names), false);
  if (!labels_ok.ok()) return labels_ok;
  absl::StatusOr<prometheus::Family<prometheus::Counter>*> family =
      AddCounterFamily(registry, name, help);
  if (!family.ok()) return family.status();
  return std::make_unique<CounterVec<N>>(*family, std::move(names));
}

template <std::size_t N>
[[nodiscard]] absl::StatusOr<std::unique_ptr<GaugeVec<N>>> NewGaugeVec(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help,
    const char* const (&label_names)[N]) {
  std::array<std::string, N> names = internal::ToArray(label_names);
  absl::Status labels_ok = ValidateLabelNames(internal::ToVector(names), false);
  if (!labels_ok.ok()) return labels_ok;
  absl::StatusOr<prometheus::Family<prometheus::Gauge>*> family =
      AddGaugeFamily(registry, name, help);
  if (!family.ok()) return family.status();
  return std::make_unique<GaugeVec<N>>(*family, std::move(names));
}

template <std::size_t N>
[[nodiscard]] absl::StatusOr<std::unique_ptr<HistogramVec<N>>> NewHistogramVec(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help,
    const char* const (&label_names)[N], std::vector<double> buckets) {
  std::array<std::string, N> names = internal::ToArray(label_names);
  absl::Status labels_ok = ValidateLabelNames(internal::ToVector(names), true);
  if (!labels_ok.ok()) return labels_ok;
  absl::Status buckets_ok = ValidateBuckets(buckets);
  if (!buckets_ok.ok()) return buckets_ok;
  absl::StatusOr<prometheus::Family<prometheus::Histogram>*> family =
      AddHistogramFamily(registry, name, help);
  if (!family.ok()) return family.status();
  return std::make_unique<HistogramVec<N>>(*family, std::move(names), std::move(buckets));
}

// Unlabelled metrics: the single child of a family.
[[nodiscard]] absl::StatusOr<prometheus::Counter*> NewCounter(prometheus::Registry& registry,
                                                              absl::string_view name,
                                                              absl::string_view help);
[[nodiscard]] absl::StatusOr<prometheus::Gauge*> NewGauge(prometheus::Registry& registry,
                                                          absl::string_view name,
                                                          absl::string_view help);
[[nodiscard]] absl::StatusOr<prometheus::Histogram*> NewHistogram(prometheus::Registry& registry,
                                                                  absl::string_view name,
                                                                  absl::string_view help,
                                                                  std::vector<double> buckets);

}  // namespace tiermesh::metrics

#endif  // TIERMESH_SERVICES_COMMON_METRICS_FAMILIES_H_
