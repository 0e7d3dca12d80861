// tiermesh-classifier-bench: in-process classification throughput, one
// thread (= per core), for 100-byte, 1 KiB and 16 KiB prompts; prints JSON.
//
//   tiermesh-classifier-bench [--model FILE] [--seconds 2] [--mode learned|heuristic]
//
// Build it in Release (the `release` preset): debug builds are several times
// slower. The prompts are synthetic but realistic in shape (prose with
// numbers, a code fragment and a question), generated deterministically.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "nlohmann/json.hpp"

#include "services/classifier/classifier.h"
#include "tools/classifier/training.h"

#ifndef TIERMESH_DEFAULT_CLASSIFIER_MODEL
#define TIERMESH_DEFAULT_CLASSIFIER_MODEL "models/classifier/default.tmcl"
#endif

ABSL_FLAG(std::string, model, TIERMESH_DEFAULT_CLASSIFIER_MODEL, "classifier model file");
ABSL_FLAG(double, seconds, 2.0, "measurement time per prompt size");
ABSL_FLAG(std::string, mode, "learned", "learned or heuristic");
ABSL_FLAG(std::vector<std::string>, sizes, std::vector<std::string>({"100", "1024", "16384"}),
          "prompt sizes in bytes");

namespace tiermesh::classifier {
namespace {

using Clock = std::chrono::steady_clock;

// Deterministic prompt of about `bytes` bytes.
std::string MakePrompt(size_t bytes, uint64_t seed) {
  static const char* const kWords[] = {
      "the",     "service",   "should",   "handle",  "requests", "quickly", "and",
      "report",  "errors",    "when",     "a",       "user",     "asks",    "about",
      "weather", "in",        "Paris",    "compare", "two",      "designs", "for",
      "caching", "layer",     "explain",  "why",     "latency",  "matters", "calculate",
      "total",   "cost",      "of",       "42",      "items",    "at",      "3.50",
      "each",    "python",    "function", "returns", "list",     "please",  "summarize",
      "this",    "paragraph", "with",     "care",    "database", "index",   "query"};
  SplitMix64 rng(seed);
  std::string text;
  while (text.size() < bytes) {
    const uint64_t r = rng.Below(100);
    if (r < 2 && bytes > 500) {
      text += "\n```python\ndef f(x):\n    return x * 2\n```\n";
    } else if (r < 6) {
      text += ". ";
    } else {
      if (!text.empty() && text.back() != ' ' && text.back() != '\n') text.push_back(' ');
      text += kWords[rng.Below(sizeof(kWords) / sizeof(kWords[0]))];
    }
  }
  text.resize(bytes - 1);
  text.push_back('?');
  return text;
}

absl::Status Run() {
  ClassifierOptions options;
  const std::optional<ClassifierMode> mode = ClassifierModeFromName(absl::GetFlag(FLAGS_mode));
  if (!mode.has_value()) return absl::InvalidArgumentError("--mode must be learned or heuristic");
  options.mode = *mode;
  std::shared_ptr<ModelStore> store;
  if (options.mode == ClassifierMode::kLearned) {
    absl::StatusOr<std::unique_ptr<ModelStore>> opened =
        ModelStore::Open(absl::GetFlag(FLAGS_model));
    if (!opened.ok()) return opened.status();
    store = *std::move(opened);
  }
  const Classifier classifier(options, store);
  const double seconds = absl::GetFlag(FLAGS_seconds);

  nlohmann::json results = nlohmann::json::array();
  std::vector<size_t> sizes;
  for (const std::string& s : absl::GetFlag(FLAGS_sizes)) {
    size_t bytes = 0;
    if (!absl::SimpleAtoi(s, &bytes) || bytes < 2) {
      return absl::InvalidArgumentError("--sizes must be integers >= 2");
    }
    sizes.push_back(bytes);
  }
  for (const size_t bytes : sizes) {
    // A few different prompts so caches see varied features.
    std::vector<std::string> prompts;
    for (uint64_t s = 0; s < 16; ++s) prompts.push_back(MakePrompt(bytes, s + 1));
    std::vector<ClassifyInput> inputs(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      inputs[i].messages.push_back({Role::kUser, prompts[i], 0});
    }
    for (const ClassifyInput& in : inputs) (void)classifier.Classify(in);  // warm-up
    std::vector<double> latencies_us;
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    size_t n = 0;
    float sink = 0;
    while (Clock::now() < deadline) {
      const Clock::time_point t0 = Clock::now();
      absl::StatusOr<Classification> c = classifier.Classify(inputs[n % inputs.size()]);
      const Clock::time_point t1 = Clock::now();
      if (!c.ok()) return c.status();
      sink += c->complexity;
      latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      ++n;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    std::sort(latencies_us.begin(), latencies_us.end());
    const auto pct = [&](double p) {
      return latencies_us[std::min(latencies_us.size() - 1,
                                   static_cast<size_t>(p * latencies_us.size()))];
    };
    results.push_back({{"prompt_bytes", bytes},
                       {"classifications", n},
                       {"classifications_per_second", n / elapsed},
                       {"min_us", latencies_us.front()},
                       {"p50_us", pct(0.50)},
                       {"p99_us", pct(0.99)},
                       {"checksum", sink}});
  }
  nlohmann::json out = {
      {"benchmark", "tiermesh-classifier in-process, single thread"},
      {"mode", std::string(ClassifierModeName(options.mode))},
      {"model_version", store ? store->current()->version() : "heuristic"},
      {"reasons_per_classification", options.max_reasons},
      {"in_process", results},
  };
  std::cout << out.dump(2) << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace tiermesh::classifier

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "In-process classifier throughput.\n"
      "  tiermesh-classifier-bench [--model FILE] [--seconds 2]");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = tiermesh::classifier::Run();
  if (!status.ok()) {
    std::cerr << "tiermesh-classifier-bench: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
