#include "services/common/metrics/families.h"

#include <cmath>
#include <exception>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/check_names.h"

namespace tiermesh::metrics {
namespace {

// prometheus-cpp reports bad names and type clashes by throwing; this is the
// one place those exceptions stop.
template <typename T, typename BuilderFn>
absl::StatusOr<prometheus::Family<T>*> AddFamily(prometheus::Registry& registry,
                                                 absl::string_view name, absl::string_view help,
                                                 BuilderFn builder) {
  absl::Status valid = ValidateMetricName(name);
  if (!valid.ok()) return valid;
  try {
    return &builder().Name(std::string(name)).Help(std::string(help)).Register(registry);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot register metric '", name, "': ", e.what()));
  }
}

}  // namespace

std::string MetricName(absl::string_view subsystem, absl::string_view name) {
  return absl::StrCat(kMetricPrefix, subsystem, "_", name);
}

const std::vector<double>& LatencyBucketsSeconds() {
  static const std::vector<double>* const kBuckets = new std::vector<double>{
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120};
  return *kBuckets;
}

const std::vector<double>& RatioBuckets() {
  static const std::vector<double>* const kBuckets =
      new std::vector<double>{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
  return *kBuckets;
}

absl::Status ValidateMetricName(absl::string_view name) {
  if (!absl::StartsWith(name, kMetricPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric name '", name, "' must start with '", kMetricPrefix, "'"));
  }
  if (!prometheus::CheckMetricName(std::string(name))) {
    return absl::InvalidArgumentError(absl::StrCat("invalid metric name '", name, "'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelNames(const std::vector<std::string>& label_names, bool is_histogram) {
  absl::flat_hash_set<std::string> seen;
  for (const std::string& label : label_names) {
    if (!prometheus::CheckLabelName(label)) {
      return absl::InvalidArgumentError(absl::StrCat("invalid label name '", label, "'"));
    }
    if (is_histogram && label == "le") {
      return absl::InvalidArgumentError("label name 'le' is reserved for histogram buckets");
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate label name '", label, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBuckets(const std::vector<double>& buckets) {
  if (buckets.empty()) return absl::InvalidArgumentError("histogram needs at least one bucket");
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (!std::isfinite(buckets[i])) {
      return absl::InvalidArgumentError("histogram bucket bounds must be finite");
    }
    if (i > 0 && !(buckets[i] > buckets[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "histogram bucket bounds must increase: ", buckets[i - 1], " then ", buckets[i]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<prometheus::Family<prometheus::Counter>*> AddCounterFamily(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help) {
  return AddFamily<prometheus::Counter>(registry, name, help, prometheus::BuildCounter);
}

absl::StatusOr<prometheus::Family<prometheus::Gauge>*> AddGaugeFamily(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help) {
  return AddFamily<prometheus::Gauge>(registry, name, help, prometheus::BuildGauge);
}

absl::StatusOr<prometheus::Family<prometheus::Histogram>*> AddHistogramFamily(
    prometheus::Registry& registry, absl::string_view name, absl::string_view help) {
  return AddFamily<prometheus::Histogram>(registry, name, help, prometheus::BuildHistogram);
}

absl::StatusOr<prometheus::Counter*> NewCounter(prometheus::Registry& registry,
                                                absl::string_view name, absl::string_view help) {
  absl::StatusOr<prometheus::Family<prometheus::Counter>*> family =
      AddCounterFamily(registry, name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Add({});
}

absl::StatusOr<prometheus::Gauge*> NewGauge(prometheus::Registry& registry, absl::string_view name,
                                            absl::string_view help) {
  absl::StatusOr<prometheus::Family<prometheus::Gauge>*> family =
      AddGaugeFamily(registry, name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Add({});
}

absl::StatusOr<prometheus::Histogram*> NewHistogram(prometheus::Registry& registry,
                                                    absl::string_view name, absl::string_view help,
                                                    std::vector<double> buckets) {
  absl::Status buckets_ok = ValidateBuckets(buckets);
  if (!buckets_ok.ok()) return buckets_ok;
  absl::StatusOr<prometheus::Family<prometheus::Histogram>*> family =
      AddHistogramFamily(registry, name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Add({}, std::move(buckets));
}

}  // namespace tiermesh::metrics
