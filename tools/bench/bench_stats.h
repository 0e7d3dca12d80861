// Pure statistics and the JSON report of tiermesh-bench and tiermesh-worker-bench: percentiles
// of latency samples and the per-run summary (outcomes by gRPC code, throughput, latency and
// time-to-first-token percentiles). No I/O, no clock: the load generators measure, this file
// only counts.
//
//   std::vector<CallRecord> calls = ...;          // one per finished call
//   nlohmann::json report = SummarizeRun(calls, /*elapsed_s=*/10.0);
//   report["latency_ms"]["p50"]                   // nearest-rank median, milliseconds
#ifndef TIERMESH_TOOLS_BENCH_BENCH_STATS_H_
#define TIERMESH_TOOLS_BENCH_BENCH_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace tiermesh::bench {

struct Percentiles {
  size_t count = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
  double mean = 0;
};

// Nearest-rank percentile (q in [0, 1]) of `sorted` (ascending); 0 when empty.
double NearestRank(const std::vector<double>& sorted, double q);

// p50/p90/p99/max/mean of `samples` in any order; all zero when empty.
Percentiles ComputePercentiles(std::vector<double> samples);

// {"count":..,"p50":..,"p90":..,"p99":..,"max":..,"mean":..}, values rounded to 3 decimals.
nlohmann::json PercentilesJson(const Percentiles& p);

// One finished call.
struct CallRecord {
  std::string code = "OK";  // gRPC status code name (grpc::StatusCode spelled as in the docs)
  double latency_ms = 0;    // from the (intended) start to the final status
  double ttft_ms = -1;      // streams: to the first delta with content; -1: none
  int64_t deltas = 0;       // streams: deltas received
};

// The run's summary: requests, ok, errors {code: count}, throughput_rps (finished calls per
// second of `elapsed_s`), latency_ms percentiles of every call, ttft_ms percentiles of the
// calls that got a first token (null when there were none: unary runs).
nlohmann::json SummarizeRun(const std::vector<CallRecord>& calls, double elapsed_s);

// The canonical name of a numeric gRPC status code ("UNAVAILABLE"), "CODE_<n>" when unknown.
std::string StatusCodeName(int code);

}  // namespace tiermesh::bench

#endif  // TIERMESH_TOOLS_BENCH_BENCH_STATS_H_
