// tiermesh-fake-provider: the fake LLM provider (fake_provider.h) as a process, for running the
// mesh on one machine without provider keys (scripts/run.sh) and for black-box tests. It speaks
// the OpenAI-compatible, Anthropic and Gemini APIs on 127.0.0.1, prints its base URL on the
// first line of stdout, and runs until SIGTERM/SIGINT.
//
//   tiermesh-fake-provider [--reply TEXT] [--tokens_per_second N] [--time_to_first_token 50ms]
//       [--cut_models fake-premium --cut_after_tokens 3]    (streams of those models are cut)
//       [--ledger_file PATH]    (the ledger as JSON lines, one per attempt, appended as they end)
//       [--cloud_proxy_config PATH [--prices 0.15,0.60,3,15]]
//
// --cloud_proxy_config writes, before the URL is printed, a tiermesh-cloud-proxy config that
// points at this fake: provider "fake" (openai_compatible, key from ${TIERMESH_FAKE_PROVIDER_KEY}),
// models cloud-cheap -> fake-cheap and cloud-premium -> fake-premium at --prices (USD per 1M
// input/output tokens of cheap, then of premium). Every script that runs the mesh against the
// fake (scripts/run.sh, tests/e2e/mesh.py, the benchmarks) uses it instead of writing its own.
//
// The ledger file lets a black-box test price what the fake actually charged, independently of
// the mesh's own accounting: each line is
//   {"api":"openai","model":"fake-cheap","stream":false,"http_status":200,
//    "prompt_tokens":12,"completion_tokens":4,"completed":true}
// Lines are written (and flushed) by a background thread shortly after each attempt ends, and
// the rest on SIGTERM/SIGINT before exit. It rereads the whole ledger per batch: meant for
// tests of hundreds or thousands of requests, not for benchmarks (leave the flag off there).
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

#include "tests/fakes/fake_provider/fake_provider.h"

ABSL_FLAG(std::string, reply,
          "This answer comes from tiermesh's fake cloud provider: configure provider keys for "
          "real cloud models.",
          "What every model answers.");
ABSL_FLAG(double, tokens_per_second, 400, "Streaming pace (0: as fast as possible).");
ABSL_FLAG(absl::Duration, time_to_first_token, absl::Milliseconds(30),
          "Streaming: delay before the first token.");

ABSL_FLAG(std::vector<std::string>, cut_models, {},
          "Upstream models whose streams are cut (connection closed, no end marker).");
ABSL_FLAG(int, cut_after_tokens, 3, "With --cut_models: tokens sent before the cut.");
ABSL_FLAG(std::string, ledger_file, "",
          "When set: append every attempt to this file as a JSON line (see above).");
ABSL_FLAG(std::string, cloud_proxy_config, "",
          "When set: write a cloud-proxy config pointing at this fake there (see above).");
ABSL_FLAG(std::vector<std::string>, prices, std::vector<std::string>({"0.15", "0.60", "3", "15"}),
          "With --cloud_proxy_config: cheap input, cheap output, premium input, premium output "
          "(USD per 1M tokens, decimal text).");

namespace {

using tiermesh::testing::FakeAttempt;
using tiermesh::testing::FakeProvider;

// Appends the attempts after the first `written` ones; returns the new count written.
size_t AppendLedger(const FakeProvider& fake, size_t written, std::ofstream& out) {
  std::vector<FakeAttempt> attempts = fake.attempts();
  for (size_t i = written; i < attempts.size(); ++i) {
    const FakeAttempt& a = attempts[i];
    nlohmann::json line = {{"api", tiermesh::testing::FakeApiName(a.api)},
                           {"model", a.model},
                           {"stream", a.stream},
                           {"http_status", a.http_status},
                           {"prompt_tokens", a.prompt_tokens},
                           {"completion_tokens", a.completion_tokens},
                           {"completed", a.completed}};
    out << line.dump() << "\n";
  }
  out.flush();
  return attempts.size();
}

// The cloud-proxy config for this fake (see the header comment).
std::string CloudProxyConfig(const std::string& base_url, const std::vector<std::string>& p) {
  return "# Written by tiermesh-fake-provider --cloud_proxy_config: the FAKE provider at " +
         base_url + ".\nproviders:\n  - name: fake\n    type: openai_compatible\n    base_url: " +
         base_url + "/v1\n    api_key: ${TIERMESH_FAKE_PROVIDER_KEY}\n    models:\n" +
         "      - {name: cloud-cheap, upstream: fake-cheap, context_window: 128000,\n" +
         "         price: {input_usd_per_mtok: \"" + p[0] + "\", output_usd_per_mtok: \"" + p[1] +
         "\"}}\n      - {name: cloud-premium, upstream: fake-premium, context_window: 200000,\n" +
         "         price: {input_usd_per_mtok: \"" + p[2] + "\", output_usd_per_mtok: \"" + p[3] +
         "\"}}\n";
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts

  absl::StatusOr<std::unique_ptr<tiermesh::testing::FakeProvider>> fake =
      tiermesh::testing::FakeProvider::Start();
  if (!fake.ok()) {
    std::cerr << "tiermesh-fake-provider: error: " << fake.status().message() << "\n";
    return 1;
  }
  tiermesh::testing::FakeModelScript script;
  script.reply = absl::GetFlag(FLAGS_reply);
  script.tokens_per_second = absl::GetFlag(FLAGS_tokens_per_second);
  script.time_to_first_token = absl::GetFlag(FLAGS_time_to_first_token);
  (*fake)->SetDefault(script);
  for (const std::string& model : absl::GetFlag(FLAGS_cut_models)) {
    tiermesh::testing::FakeModelScript cut = script;
    cut.cut_after_tokens = absl::GetFlag(FLAGS_cut_after_tokens);
    (*fake)->SetModel(model, cut);
  }
  const std::string ledger_path = absl::GetFlag(FLAGS_ledger_file);
  std::ofstream ledger;
  if (!ledger_path.empty()) {
    ledger.open(ledger_path, std::ios::out | std::ios::trunc);
    if (!ledger) {
      std::cerr << "tiermesh-fake-provider: error: cannot write --ledger_file " << ledger_path
                << "\n";
      return 1;
    }
  }
  if (const std::string path = absl::GetFlag(FLAGS_cloud_proxy_config); !path.empty()) {
    const std::vector<std::string> prices = absl::GetFlag(FLAGS_prices);
    if (prices.size() != 4) {
      std::cerr << "tiermesh-fake-provider: error: --prices needs 4 values, got " << prices.size()
                << "\n";
      return 1;
    }
    std::ofstream config(path, std::ios::out | std::ios::trunc);
    config << CloudProxyConfig((*fake)->base_url(), prices);
    config.close();
    if (!config) {
      std::cerr << "tiermesh-fake-provider: error: cannot write --cloud_proxy_config " << path
                << "\n";
      return 1;
    }
  }
  std::atomic<bool> stopping{false};
  size_t written = 0;
  std::thread ledger_writer;
  if (ledger.is_open()) {
    ledger_writer = std::thread([&] {
      while (!stopping.load()) {
        if ((*fake)->WaitForAttempts(written + 1, absl::Milliseconds(100))) {
          written = AppendLedger(**fake, written, ledger);
        }
      }
    });
  }
  std::cout << (*fake)->base_url() << std::endl;

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  if (ledger_writer.joinable()) {
    stopping = true;
    ledger_writer.join();
    AppendLedger(**fake, written, ledger);
  }
  return 0;
}
