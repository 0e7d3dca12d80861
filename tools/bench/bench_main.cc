// tiermesh-bench: an async gRPC load generator for the mesh. Prints one JSON object (see
// bench_stats.h): requests, ok, errors by code, throughput, latency and (streams) time to first
// token percentiles in milliseconds.
//
//   tiermesh-bench --address 127.0.0.1:50050 --concurrency 32 --duration 10s
//   tiermesh-bench --address 127.0.0.1:50050 --mode stream --rate 200 --prompts prompts.txt
//   tiermesh-bench --address 127.0.0.1:50053 --target inference --model cloud-cheap
//
// --target router calls RouterService.Chat / ChatStream; --target inference calls
// InferenceService.Generate / GenerateStream of a worker or cloud-proxy directly (with --model),
// to compare the mesh with the backend alone. --rate 0 is a closed loop (`concurrency` calls
// always in flight); a positive rate is an open loop. Exit status: 0 when the run happened
// (whatever the calls answered), 1 on bad flags or an unreadable prompt file.
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "tools/bench/load_generator.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50050", "host:port of the router or backend.");
ABSL_FLAG(std::string, target, "router", "router (RouterService) or inference (InferenceService).");
ABSL_FLAG(std::string, mode, "unary", "unary or stream.");
ABSL_FLAG(int, concurrency, 16, "Calls in flight (closed loop), or at most (open loop).");
ABSL_FLAG(double, rate, 0, "Calls per second (open loop); 0: closed loop.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "How long to send (after --warmup).");
ABSL_FLAG(int64_t, requests, 0, "Stop after this many counted calls (0: --duration only).");
ABSL_FLAG(absl::Duration, warmup, absl::ZeroDuration(), "Calls started before are not counted.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "Deadline of each call.");
ABSL_FLAG(std::string, prompts, "", "File with one prompt per line (default: one greeting).");
ABSL_FLAG(std::string, api_key, "", "Router caller key (authorization: Bearer <key>).");
ABSL_FLAG(std::string, model, "", "Model for --target inference.");
ABSL_FLAG(int, max_tokens, 16, "max_tokens of each request.");
ABSL_FLAG(int, channels, 1, "gRPC channels (connections) to spread the calls over.");

namespace {

int Fail(const std::string& why) {
  std::cerr << "tiermesh-bench: error: " << why << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("async gRPC load generator for tiermesh; prints JSON");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) return Fail(absl::StrCat("unexpected argument '", rest[1], "'"));

  tiermesh::bench::LoadOptions options;
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target == "router") {
    options.target = tiermesh::bench::LoadTarget::kRouter;
  } else if (target == "inference") {
    options.target = tiermesh::bench::LoadTarget::kInference;
  } else {
    return Fail("--target must be router or inference");
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "unary") {
    options.mode = tiermesh::bench::LoadMode::kUnary;
  } else if (mode == "stream") {
    options.mode = tiermesh::bench::LoadMode::kStream;
  } else {
    return Fail("--mode must be unary or stream");
  }
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.rate = absl::GetFlag(FLAGS_rate);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.max_requests = absl::GetFlag(FLAGS_requests);
  options.warmup = absl::GetFlag(FLAGS_warmup);
  options.call_timeout = absl::GetFlag(FLAGS_timeout);
  options.api_key = absl::GetFlag(FLAGS_api_key);
  options.model = absl::GetFlag(FLAGS_model);
  options.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  const std::string prompts = absl::GetFlag(FLAGS_prompts);
  if (prompts.empty()) {
    options.prompts = {"Hi! How are you today?"};
  } else {
    std::ifstream in(prompts);
    if (!in) return Fail(absl::StrCat("cannot read --prompts ", prompts));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) options.prompts.push_back(line);
    }
    if (options.prompts.empty()) return Fail(absl::StrCat("--prompts ", prompts, " is empty"));
  }
  const int channel_count = absl::GetFlag(FLAGS_channels);
  if (channel_count < 1) return Fail("--channels must be >= 1");
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < channel_count; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
    args.SetInt("tiermesh.bench.channel", i);
    channels.push_back(grpc::CreateCustomChannel(absl::GetFlag(FLAGS_address),
                                                 grpc::InsecureChannelCredentials(), args));
  }
  for (const auto& channel : channels) {
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      return Fail(absl::StrCat("cannot connect to ", absl::GetFlag(FLAGS_address)));
    }
  }
  absl::StatusOr<nlohmann::json> report = tiermesh::bench::RunLoad(options, channels);
  if (!report.ok()) return Fail(std::string(report.status().message()));
  (*report)["run"]["address"] = absl::GetFlag(FLAGS_address);
  std::cout << report->dump() << std::endl;
  return 0;
}
