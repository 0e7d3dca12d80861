// tiermesh-fake-provider: the fake LLM provider (fake_provider.h) as a process, for running the
// mesh on one machine without provider keys (scripts/run.sh) and for black-box tests. It speaks
// the OpenAI-compatible, Anthropic and Gemini APIs on 127.0.0.1, prints its base URL on the
// first line of stdout, and runs until SIGTERM/SIGINT.
//
//   tiermesh-fake-provider [--reply TEXT] [--tokens_per_second N] [--time_to_first_token 50ms]
//       [--cut_models fake-premium --cut_after_tokens 3]    (streams of those models are cut)
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/time.h"

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
  std::cout << (*fake)->base_url() << std::endl;

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return 0;
}
