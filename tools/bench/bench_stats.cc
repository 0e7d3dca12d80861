#include "tools/bench/bench_stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace tiermesh::bench {
namespace {

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

double NearestRank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::min(1.0, std::max(0.0, q));
  // Nearest rank: the smallest sample with at least q of the samples at or below it.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  if (rank == 0) rank = 1;
  return sorted[rank - 1];
}

Percentiles ComputePercentiles(std::vector<double> samples) {
  Percentiles p;
  if (samples.empty()) return p;
  std::sort(samples.begin(), samples.end());
  p.count = samples.size();
  p.p50 = NearestRank(samples, 0.50);
  p.p90 = NearestRank(samples, 0.90);
  p.p99 = NearestRank(samples, 0.99);
  p.max = samples.back();
  p.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(p.count);
  return p;
}

nlohmann::json PercentilesJson(const Percentiles& p) {
  return {{"count", p.count},     {"p50", Round3(p.p50)}, {"p90", Round3(p.p90)},
          {"p99", Round3(p.p99)}, {"max", Round3(p.max)}, {"mean", Round3(p.mean)}};
}

nlohmann::json SummarizeRun(const std::vector<CallRecord>& calls, double elapsed_s) {
  std::map<std::string, int64_t> errors;
  std::vector<double> latency;
  std::vector<double> ttft;
  int64_t ok = 0;
  int64_t deltas = 0;
  latency.reserve(calls.size());
  for (const CallRecord& c : calls) {
    if (c.code == "OK") {
      ++ok;
    } else {
      ++errors[c.code];
    }
    latency.push_back(c.latency_ms);
    if (c.ttft_ms >= 0) ttft.push_back(c.ttft_ms);
    deltas += c.deltas;
  }
  nlohmann::json report;
  report["requests"] = calls.size();
  report["ok"] = ok;
  report["errors"] = errors;
  report["elapsed_s"] = Round3(elapsed_s);
  report["throughput_rps"] =
      elapsed_s > 0 ? Round3(static_cast<double>(calls.size()) / elapsed_s) : 0.0;
  report["latency_ms"] = PercentilesJson(ComputePercentiles(std::move(latency)));
  report["ttft_ms"] =
      ttft.empty() ? nlohmann::json(nullptr) : PercentilesJson(ComputePercentiles(std::move(ttft)));
  report["stream_deltas"] = deltas;
  return report;
}

std::string StatusCodeName(int code) {
  static const char* const kNames[] = {
      "OK",           "CANCELLED",         "UNKNOWN",        "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",    "ALREADY_EXISTS", "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",         "UNAVAILABLE",    "DATA_LOSS",
      "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) {
    return kNames[code];
  }
  return "CODE_" + std::to_string(code);
}

}  // namespace tiermesh::bench
