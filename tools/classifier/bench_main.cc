// tiermesh-classifier-bench: classification throughput and latency for
// 100-byte, 1 KiB and 16 KiB prompts, printed as JSON:
//   in_process  the Classifier on one thread (= per core);
//   grpc        ClassifierService.Classify over loopback gRPC: a server in
//               this process (the real RunningServer with its metrics
//               interceptor, on 127.0.0.1:0) and one synchronous client that
//               sends one call at a time, so latency is the round trip and
//               calls_per_second is 1 / mean round trip.
//
//   tiermesh-classifier-bench [--model FILE] [--seconds 2] [--mode learned|heuristic]
//       [--grpc_seconds 2] [--grpc=false] [--iterations N]
//
// --iterations N runs exactly N classifications per size in process (no
// clock; for `valgrind --tool=callgrind`, whose instruction counts are
// reproducible where wall time on a shared machine is not).
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
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "prometheus/registry.h"

#include "services/classifier/classifier.h"
#include "services/classifier/classifier_service.h"
#include "services/common/server/server.h"
#include "tiermesh/v1/classifier.grpc.pb.h"
#include "tools/classifier/training.h"

#ifndef TIERMESH_DEFAULT_CLASSIFIER_MODEL
#define TIERMESH_DEFAULT_CLASSIFIER_MODEL "models/classifier/default.tmcl"
#endif

ABSL_FLAG(std::string, model, TIERMESH_DEFAULT_CLASSIFIER_MODEL, "classifier model file");
ABSL_FLAG(double, seconds, 2.0, "measurement time per prompt size");
ABSL_FLAG(std::string, mode, "learned", "learned or heuristic");
ABSL_FLAG(double, grpc_seconds, 2.0, "measurement time per prompt size over loopback gRPC");
ABSL_FLAG(bool, grpc, true, "also measure ClassifierService.Classify over loopback gRPC");
ABSL_FLAG(int64_t, iterations, 0,
          "if > 0: exactly this many in-process classifications per size, no gRPC part "
          "(for callgrind)");
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

// Latency summary of one measured run (latencies in microseconds).
nlohmann::json Summarize(size_t bytes, std::vector<double> latencies_us, double elapsed_s,
                         double checksum) {
  std::sort(latencies_us.begin(), latencies_us.end());
  const size_t n = latencies_us.size();
  const auto pct = [&](double p) {
    return n == 0 ? 0.0 : latencies_us[std::min(n - 1, static_cast<size_t>(p * n))];
  };
  return {{"prompt_bytes", bytes},
          {"classifications", n},
          {"classifications_per_second", elapsed_s > 0 ? n / elapsed_s : 0.0},
          {"min_us", n == 0 ? 0.0 : latencies_us.front()},
          {"p50_us", pct(0.50)},
          {"p99_us", pct(0.99)},
          {"checksum", checksum}};
}

// ClassifierService over loopback gRPC: one in-process server, one
// synchronous client calling sequentially.
absl::StatusOr<nlohmann::json> RunGrpc(std::shared_ptr<const Classifier> classifier,
                                       const std::vector<std::vector<std::string>>& prompts,
                                       const std::vector<size_t>& sizes, double seconds) {
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<std::unique_ptr<ClassifierServiceImpl>> service =
      ClassifierServiceImpl::Create(std::move(classifier), registry.get(), nullptr);
  if (!service.ok()) return service.status();
  server::ServerOptions server_options;
  server_options.service_name = "classifier-bench";
  server_options.grpc_address = "127.0.0.1:0";
  server_options.drain_timeout = absl::Seconds(5);
  server_options.logger = logging::Logger::Discard();  // keep stdout/stderr for the JSON
  server::ServerComponents parts;
  parts.services = {service->get()};
  parts.metrics_registry = registry;  // as in tiermesh-classifier: metrics interceptor on
  absl::StatusOr<std::unique_ptr<server::RunningServer>> running =
      server::RunningServer::Start(server_options, parts);
  if (!running.ok()) return running.status();
  std::unique_ptr<server::RunningServer> server = *std::move(running);
  server->SetServing(true);
  std::unique_ptr<v1::ClassifierService::Stub> stub =
      v1::ClassifierService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->port()),
                                                         grpc::InsecureChannelCredentials()));

  nlohmann::json results = nlohmann::json::array();
  absl::Status failure;
  for (size_t s = 0; s < sizes.size() && failure.ok(); ++s) {
    std::vector<v1::ClassifyRequest> requests(prompts[s].size());
    for (size_t i = 0; i < prompts[s].size(); ++i) {
      v1::ChatMessage* m = requests[i].add_messages();
      m->set_role(v1::ROLE_USER);
      m->set_content(prompts[s][i]);
    }
    const auto call = [&](const v1::ClassifyRequest& request, double* complexity) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::ClassifyResponse response;
      const grpc::Status status = stub->Classify(&context, request, &response);
      if (!status.ok()) {
        return absl::UnavailableError(
            absl::StrCat("Classify over gRPC failed: ", status.error_message()));
      }
      *complexity += response.classification().complexity();
      return absl::OkStatus();
    };
    double checksum = 0;
    // Warm-up: connection, HTTP/2 windows, allocator.
    for (int w = 0; w < 200 && failure.ok(); ++w) {
      failure = call(requests[w % requests.size()], &checksum);
    }
    checksum = 0;
    std::vector<double> latencies_us;
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    for (size_t n = 0; failure.ok() && Clock::now() < deadline; ++n) {
      const Clock::time_point t0 = Clock::now();
      failure = call(requests[n % requests.size()], &checksum);
      latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    results.push_back(Summarize(sizes[s], std::move(latencies_us), elapsed, checksum));
  }
  server->Shutdown();
  if (!failure.ok()) return failure;
  return results;
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
  const auto classifier = std::make_shared<const Classifier>(options, store);
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
  // A few different prompts per size so caches see varied features.
  std::vector<std::vector<std::string>> all_prompts;
  for (const size_t bytes : sizes) {
    all_prompts.emplace_back();
    for (uint64_t s = 0; s < 16; ++s) all_prompts.back().push_back(MakePrompt(bytes, s + 1));
  }
  const int64_t iterations = absl::GetFlag(FLAGS_iterations);
  for (size_t size_index = 0; size_index < sizes.size(); ++size_index) {
    const size_t bytes = sizes[size_index];
    const std::vector<std::string>& prompts = all_prompts[size_index];
    std::vector<ClassifyInput> inputs(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
      inputs[i].messages.push_back({Role::kUser, prompts[i], 0});
    }
    if (iterations > 0) {
      float sink = 0;
      for (int64_t n = 0; n < iterations; ++n) {
        absl::StatusOr<Classification> c = classifier->Classify(inputs[n % inputs.size()]);
        if (!c.ok()) return c.status();
        sink += c->complexity;
      }
      results.push_back(
          {{"prompt_bytes", bytes}, {"classifications", iterations}, {"checksum", sink}});
      continue;
    }
    for (const ClassifyInput& in : inputs) (void)classifier->Classify(in);  // warm-up
    std::vector<double> latencies_us;
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    size_t n = 0;
    float sink = 0;
    while (Clock::now() < deadline) {
      const Clock::time_point t0 = Clock::now();
      absl::StatusOr<Classification> c = classifier->Classify(inputs[n % inputs.size()]);
      const Clock::time_point t1 = Clock::now();
      if (!c.ok()) return c.status();
      sink += c->complexity;
      latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      ++n;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    results.push_back(Summarize(bytes, std::move(latencies_us), elapsed, sink));
  }
  nlohmann::json out = {
      {"benchmark", "tiermesh-classifier, single thread"},
      {"mode", std::string(ClassifierModeName(options.mode))},
      {"model_version", store ? store->current()->version() : "heuristic"},
      {"reasons_per_classification", options.max_reasons},
      {"in_process", results},
  };
  if (absl::GetFlag(FLAGS_grpc) && iterations <= 0) {
    absl::StatusOr<nlohmann::json> grpc_results =
        RunGrpc(classifier, all_prompts, sizes, absl::GetFlag(FLAGS_grpc_seconds));
    if (!grpc_results.ok()) return grpc_results.status();
    out["grpc"] = {{"transport", "loopback TCP 127.0.0.1, insecure"},
                   {"client", "one synchronous client, one call at a time"},
                   {"server", "in-process RunningServer (sync handlers, metrics interceptor)"},
                   {"results", *std::move(grpc_results)}};
  }
  std::cout << out.dump(2) << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace tiermesh::classifier

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Classifier throughput and latency, in process and over loopback gRPC (JSON).\n"
      "  tiermesh-classifier-bench [--model FILE] [--seconds 2] [--grpc_seconds 2] "
      "[--grpc=false] [--iterations N]");
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = tiermesh::classifier::Run();
  if (!status.ok()) {
    std::cerr << "tiermesh-classifier-bench: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
