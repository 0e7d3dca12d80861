// tiermesh-worker-bench: the worker's own cost on the streaming path. Streams the same prompts
// through the worker (InferenceService.GenerateStream) and directly from the llama-server
// behind it (POST /v1/chat/completions, SSE, through services/common/http's transport, with the
// very body the worker would send: BuildChatCompletionBody), alternating the two paths call by
// call so that both see the same machine load and llama-server state. Prints one JSON object:
// time to first token and per-token time percentiles of each path, and the worker's added
// TTFT (p50) and added per-token time (p50), also as the median of the per-pair differences.
//
//   tiermesh-worker-bench --worker 127.0.0.1:50052 --model sidecar
//       --llama_url http://127.0.0.1:8080 --llama_api_key KEY --requests 200 --max_tokens 64
//
// Run the worker with an `external` model pointing at the same llama-server. Calls are
// sequential (one in flight): this measures overhead, not throughput. Per-token time is
// (end of stream - first token) / (completion tokens - 1), the completion tokens as reported
// in the usage of each path.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "services/common/http/http_client.h"
#include "services/common/http/sse.h"
#include "services/worker/llama_api.h"
#include "tiermesh/v1/inference.grpc.pb.h"
#include "tools/bench/bench_stats.h"

ABSL_FLAG(std::string, worker, "127.0.0.1:50052", "The worker's gRPC address.");
ABSL_FLAG(std::string, model, "", "The worker's model name (an external model).");
ABSL_FLAG(std::string, llama_url, "", "Base URL of the same model's llama-server.");
ABSL_FLAG(std::string, llama_api_key, "", "Its API key (empty: none).");
ABSL_FLAG(std::string, prompts, "", "File with one prompt per line (default: built-in set).");
ABSL_FLAG(int, requests, 200, "Measured calls per path.");
ABSL_FLAG(int, warmup, 10, "Calls per path before measuring.");
ABSL_FLAG(int, max_tokens, 64, "max_tokens of each call.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(60), "Deadline of each call.");

namespace {

using SteadyClock = std::chrono::steady_clock;
namespace v1 = tiermesh::v1;

struct Sample {
  bool ok = false;
  std::string error;
  double ttft_ms = -1;
  double total_ms = 0;
  int64_t completion_tokens = 0;
  double PerTokenUs() const {
    if (completion_tokens < 2 || ttft_ms < 0) return -1;
    return (total_ms - ttft_ms) * 1000.0 / static_cast<double>(completion_tokens - 1);
  }
};

double MsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

v1::GenerateRequest MakeRequest(const std::string& model, const std::string& prompt,
                                int max_tokens) {
  v1::GenerateRequest r;
  r.set_model(model);
  v1::ChatMessage* m = r.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content(prompt);
  r.mutable_params()->set_max_tokens(max_tokens);
  r.mutable_params()->set_temperature(0);  // the same tokens on both paths
  r.mutable_params()->set_seed(42);
  return r;
}

Sample ThroughWorker(v1::InferenceService::Stub& stub, const v1::GenerateRequest& request,
                     absl::Duration timeout) {
  Sample s;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout));
  v1::GenerateStreamRequest stream_request;
  *stream_request.mutable_request() = request;
  const auto start = SteadyClock::now();
  auto reader = stub.GenerateStream(&context, stream_request);
  v1::GenerateStreamResponse response;
  while (reader->Read(&response)) {
    if (response.has_delta() && s.ttft_ms < 0 && !response.delta().content().empty()) {
      s.ttft_ms = MsSince(start);
    }
    if (response.has_summary()) s.completion_tokens = response.summary().usage().completion_tokens();
  }
  grpc::Status status = reader->Finish();
  s.total_ms = MsSince(start);
  s.ok = status.ok();
  if (!s.ok) s.error = absl::StrCat("worker: ", status.error_message());
  return s;
}

Sample Direct(tiermesh::http::HttpTransport& http, const std::string& url,
              const std::string& api_key, const std::string& body, absl::Duration timeout) {
  Sample s;
  tiermesh::http::HttpRequest request;
  request.method = tiermesh::http::HttpMethod::kPost;
  request.url = url + "/v1/chat/completions";
  request.headers = {{"Content-Type", "application/json"}};
  if (!api_key.empty()) request.headers.push_back({"Authorization", "Bearer " + api_key});
  request.body = body;
  request.deadline = absl::Now() + timeout;
  tiermesh::http::SseDecoder sse;
  int status_code = 0;
  bool done = false;
  std::string parse_error;
  const auto start = SteadyClock::now();
  auto on_event = [&](tiermesh::http::SseEvent&& event) {
    if (event.data == "[DONE]") {
      done = true;
      return;
    }
    // A client reads each chunk's JSON, as the worker does.
    nlohmann::json chunk = nlohmann::json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (chunk.is_discarded()) {
      parse_error = "malformed chunk";
      return;
    }
    const auto choices = chunk.find("choices");
    if (choices != chunk.end() && choices->is_array() && !choices->empty()) {
      const auto& delta = (*choices)[0].value("delta", nlohmann::json::object());
      const auto content = delta.find("content");
      if (content != delta.end() && content->is_string() && !content->get_ref<const std::string&>().empty() &&
          s.ttft_ms < 0) {
        s.ttft_ms = MsSince(start);
      }
    }
    const auto usage = chunk.find("usage");
    if (usage != chunk.end() && usage->is_object()) {
      s.completion_tokens = usage->value("completion_tokens", int64_t{0});
    }
  };
  tiermesh::http::HttpStreamCallbacks callbacks;
  callbacks.on_head = [&](const tiermesh::http::HttpResponseHead& head) {
    status_code = head.status_code;
    return status_code == 200;
  };
  callbacks.on_body = [&](absl::string_view data) { return sse.Feed(data, on_event).ok(); };
  absl::Status status = http.Send(request, callbacks);
  s.total_ms = MsSince(start);
  s.ok = status.ok() && status_code == 200 && done && parse_error.empty();
  if (!s.ok) {
    s.error = absl::StrCat("direct: HTTP ", status_code, " ", status.ToString(), " ", parse_error,
                           done ? "" : " (no [DONE])");
  }
  return s;
}

nlohmann::json PathJson(const std::vector<Sample>& samples) {
  std::vector<double> ttft;
  std::vector<double> per_token;
  std::vector<double> total;
  int64_t tokens = 0;
  for (const Sample& s : samples) {
    ttft.push_back(s.ttft_ms);
    total.push_back(s.total_ms);
    if (s.PerTokenUs() >= 0) per_token.push_back(s.PerTokenUs());
    tokens += s.completion_tokens;
  }
  using tiermesh::bench::ComputePercentiles;
  using tiermesh::bench::PercentilesJson;
  return {{"ttft_ms", PercentilesJson(ComputePercentiles(ttft))},
          {"per_token_us", PercentilesJson(ComputePercentiles(per_token))},
          {"total_ms", PercentilesJson(ComputePercentiles(total))},
          {"completion_tokens_mean",
           samples.empty() ? 0.0 : static_cast<double>(tokens) / static_cast<double>(samples.size())}};
}

int Fail(const std::string& why) {
  std::cerr << "tiermesh-worker-bench: error: " << why << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("the worker's added streaming overhead over its llama-server");
  absl::ParseCommandLine(argc, argv);
  const std::string model = absl::GetFlag(FLAGS_model);
  const std::string url = absl::GetFlag(FLAGS_llama_url);
  if (model.empty() || url.empty()) return Fail("--model and --llama_url are required");
  std::vector<std::string> prompts;
  if (absl::GetFlag(FLAGS_prompts).empty()) {
    prompts = {"Hi! How are you today?", "Tell me a short story about a cat.",
               "What is the capital of France?", "Write a haiku about the sea."};
  } else {
    std::ifstream in(absl::GetFlag(FLAGS_prompts));
    if (!in) return Fail("cannot read --prompts");
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) prompts.push_back(line);
    }
    if (prompts.empty()) return Fail("--prompts is empty");
  }
  absl::StatusOr<std::unique_ptr<tiermesh::http::HttpTransport>> http =
      tiermesh::http::NewLoopbackHttpTransport();
  if (!http.ok()) return Fail(std::string(http.status().message()));
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_worker), grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    return Fail("cannot connect to the worker");
  }
  auto stub = v1::InferenceService::NewStub(channel);
  const int warmup = absl::GetFlag(FLAGS_warmup);
  const int requests = absl::GetFlag(FLAGS_requests);
  const absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  std::vector<Sample> worker_samples;
  std::vector<Sample> direct_samples;
  std::vector<double> ttft_diff;
  std::vector<double> per_token_diff;
  int64_t errors = 0;
  std::string first_error;
  for (int i = 0; i < warmup + requests; ++i) {
    v1::GenerateRequest request =
        MakeRequest(model, prompts[static_cast<size_t>(i) % prompts.size()], absl::GetFlag(FLAGS_max_tokens));
    absl::StatusOr<std::string> body = tiermesh::worker::BuildChatCompletionBody(request, true);
    if (!body.ok()) return Fail(std::string(body.status().message()));
    Sample w;
    Sample d;
    // Alternate which path goes first (prompt cache, CPU frequency, neighbours' load).
    if (i % 2 == 0) {
      w = ThroughWorker(*stub, request, timeout);
      d = Direct(**http, url, absl::GetFlag(FLAGS_llama_api_key), *body, timeout);
    } else {
      d = Direct(**http, url, absl::GetFlag(FLAGS_llama_api_key), *body, timeout);
      w = ThroughWorker(*stub, request, timeout);
    }
    if (i < warmup) continue;
    if (!w.ok || !d.ok || w.ttft_ms < 0 || d.ttft_ms < 0) {
      ++errors;
      if (first_error.empty()) first_error = !w.ok ? w.error : !d.ok ? d.error : "no content";
      continue;
    }
    worker_samples.push_back(w);
    direct_samples.push_back(d);
    ttft_diff.push_back(w.ttft_ms - d.ttft_ms);
    if (w.PerTokenUs() >= 0 && d.PerTokenUs() >= 0) {
      per_token_diff.push_back(w.PerTokenUs() - d.PerTokenUs());
    }
  }
  nlohmann::json worker_json = PathJson(worker_samples);
  nlohmann::json direct_json = PathJson(direct_samples);
  using tiermesh::bench::ComputePercentiles;
  nlohmann::json report;
  report["pairs"] = worker_samples.size();
  report["errors"] = errors;
  if (!first_error.empty()) report["first_error"] = first_error;
  report["max_tokens"] = absl::GetFlag(FLAGS_max_tokens);
  report["worker"] = worker_json;
  report["direct"] = direct_json;
  report["added_ttft_ms_p50"] =
      worker_json["ttft_ms"]["p50"].get<double>() - direct_json["ttft_ms"]["p50"].get<double>();
  report["added_per_token_us_p50"] = worker_json["per_token_us"]["p50"].get<double>() -
                                     direct_json["per_token_us"]["p50"].get<double>();
  report["paired_added_ttft_ms_p50"] = ComputePercentiles(ttft_diff).p50;
  report["paired_added_per_token_us_p50"] = ComputePercentiles(per_token_diff).p50;
  std::cout << report.dump() << std::endl;
  return worker_samples.empty() ? 1 : 0;
}
