// The worker's pure pieces: config parsing, residency decisions (eviction, restart backoff,
// admission), proto conversion, model-file checks and the NVML probe (against a fake
// libnvidia-ml built by the tests).
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/config/env.h"
#include "services/common/config/loader.h"
#include "services/common/crypto/sha256.h"
#include "services/common/status/status_matchers.h"
#include "services/worker/config.h"
#include "services/worker/gpu.h"
#include "services/worker/llama_process.h"
#include "services/worker/model_manager.h"
#include "services/worker/proto_convert.h"
#include "services/worker/residency.h"

namespace tiermesh::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using tiermesh::testing::StatusIs;

absl::StatusOr<WorkerConfig> Parse(const std::string& yaml) {
  return config::LoadConfigText(yaml, "worker.yaml", config::MapEnv({{"HOME_MODELS", "/m"}}),
                                ParseWorkerConfig);
}

TEST(WorkerConfigTest, ParsesManagedAndExternalModels) {
  absl::StatusOr<WorkerConfig> c = Parse(R"(
default_model: big
max_loaded: 2
llama_server: {binary: /opt/llama-server, threads: 4}
scrape_interval: 250ms
restart_backoff: {initial: 100ms, max: 5s}
fault_injection: {unavailable_ratio: 0.2}
models:
  - name: tiny
    managed: {model_path: "${HOME_MODELS}/tiny.gguf", parallel: 4, ctx_size: 8192}
  - name: big
    managed:
      model_path: /m/big.gguf
      sha256: "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
      binary: /other/llama-server
      extra_args: ["--flash-attn", "on"]
    max_queue: 2
  - name: side
    external: {url: "http://127.0.0.1:8080", api_key: k}
    supports_tools: false
    context_window: 32768
)");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->default_model, "big");
  EXPECT_EQ(c->max_loaded, 2);
  EXPECT_EQ(c->scrape_interval, absl::Milliseconds(250));
  EXPECT_EQ(c->restart_backoff_max, absl::Seconds(5));
  EXPECT_DOUBLE_EQ(c->fault_unavailable_ratio, 0.2);
  ASSERT_EQ(c->models.size(), 3u);
  const ModelConfig& tiny = c->models[0];
  EXPECT_TRUE(tiny.managed);
  EXPECT_EQ(tiny.managed_config.model_path, "/m/tiny.gguf");
  EXPECT_EQ(tiny.managed_config.binary, "/opt/llama-server");
  EXPECT_EQ(tiny.managed_config.threads, 4);
  EXPECT_EQ(tiny.context_window, 2048);  // 8192 over 4 slots
  EXPECT_EQ(c->models[1].managed_config.binary, "/other/llama-server");
  EXPECT_EQ(c->models[1].managed_config.sha256,
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(c->models[1].max_queue, 2);
  EXPECT_FALSE(c->models[2].managed);
  EXPECT_EQ(c->models[2].external_config.url, "http://127.0.0.1:8080");
  EXPECT_FALSE(c->models[2].supports_tools);
  EXPECT_EQ(c->models[2].context_window, 32768);
}

TEST(WorkerConfigTest, DefaultModelIsTheFirst) {
  absl::StatusOr<WorkerConfig> c = Parse("models: [{name: a, managed: {model_path: a.gguf}}]");
  ASSERT_OK(c.status());
  EXPECT_EQ(c->default_model, "a");
  EXPECT_EQ(c->models[0].managed_config.binary, "llama-server");
}

TEST(WorkerConfigTest, RejectsBadConfigsWithTheKey) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"models: []", "models"},
      {"models: [{name: a}]", "exactly one of 'managed' or 'external'"},
      {"models: [{name: a, managed: {model_path: x}, external: {url: 'http://h:1'}}]",
       "exactly one"},
      {"models: [{name: 'a b', managed: {model_path: x}}]", "not a model name"},
      {"models: [{name: a, managed: {model_path: x}}, {name: a, managed: {model_path: y}}]",
       "duplicate model name 'a'"},
      {"default_model: b\nmodels: [{name: a, managed: {model_path: x}}]",
       "default_model: 'b' is not one of the models"},
      {"models: [{name: a, managed: {model_path: x, sha256: abc}}]", "64 hex digits"},
      {"models: [{name: a, managed: {model_path: x, parallel: 0}}]", "out of range"},
      {"models: [{name: a, managed: {model_path: x, extra_args: ['--port', '9']}}]",
       "--port is set by the worker"},
      {"models: [{name: a, managed: {model_path: x, modelpath: y}}]", "unknown key"},
      {"models: [{name: a, external: {url: 'ftp://h'}}]", "not an http(s)://"},
      {"models: [{name: a, external: {url: 'http://h:1/'}}]", "without a trailing slash"},
      {"fault_injection: {unavailable_ratio: 1.5}\nmodels: [{name: a, managed: {model_path: x}}]",
       "out of range"},
      {"max_loaded: 0\nmodels: [{name: a, managed: {model_path: x}}]", "max_loaded"},
      {"restart_backoff: {initial: 10s, max: 1s}\nmodels: [{name: a, managed: {model_path: x}}]",
       "max is below initial"},
      {"models: [{name: a, managed: {model_path: x, ctx_size: 100, parallel: 4}}]",
       "too small for 4 slots"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Parse(c.yaml).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.yaml;
  }
}

ResidentView View(const std::string& name, Residency r, int in_flight, int64_t used_s,
                  bool managed = true) {
  return {name, managed, r, in_flight, absl::FromUnixSeconds(used_s)};
}

TEST(ResidencyTest, ChooseEviction) {
  using R = Residency;
  struct Case {
    std::vector<ResidentView> models;
    std::string incoming;
    int max_loaded;
    std::optional<std::string> want;
  };
  const std::vector<Case> cases = {
      // Room already.
      {{View("a", R::kReady, 0, 1), View("b", R::kUnloaded, 0, 0)}, "b", 2, std::nullopt},
      {{View("a", R::kUnloaded, 0, 1)}, "b", 1, std::nullopt},
      // The least recently used goes first.
      {{View("a", R::kReady, 0, 5), View("b", R::kReady, 0, 3), View("c", R::kUnloaded, 0, 0)},
       "c", 2, "b"},
      // Idle before busy, whatever the age.
      {{View("a", R::kReady, 0, 5), View("b", R::kReady, 2, 3), View("c", R::kUnloaded, 0, 0)},
       "c", 2, "a"},
      // A restarting model (no process) before anything else.
      {{View("a", R::kReady, 0, 1), View("b", R::kRestarting, 0, 9)}, "c", 2, "b"},
      // Loading/unloading ones occupy room but cannot be chosen: wait ("").
      {{View("a", R::kLoading, 0, 1)}, "c", 1, ""},
      {{View("a", R::kUnloading, 0, 1), View("b", R::kReady, 0, 2)}, "c", 2, "b"},
      // External models never count; the incoming one never evicts itself.
      {{View("x", R::kReady, 0, 1, false), View("c", R::kReady, 0, 1)}, "c", 1, std::nullopt},
      // Failed ones hold nothing.
      {{View("a", R::kFailed, 0, 1)}, "c", 1, std::nullopt},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(ChooseEviction(cases[i].models, cases[i].incoming, cases[i].max_loaded),
              cases[i].want)
        << "case " << i;
  }
}

TEST(ResidencyTest, RestartDelayDoublesUpToTheCap) {
  const absl::Duration initial = absl::Milliseconds(500), max = absl::Seconds(5);
  EXPECT_EQ(RestartDelay(0, initial, max), absl::ZeroDuration());
  EXPECT_EQ(RestartDelay(1, initial, max), absl::Milliseconds(500));
  EXPECT_EQ(RestartDelay(2, initial, max), absl::Seconds(1));
  EXPECT_EQ(RestartDelay(4, initial, max), absl::Seconds(4));
  EXPECT_EQ(RestartDelay(5, initial, max), absl::Seconds(5));
  EXPECT_EQ(RestartDelay(1000, initial, max), absl::Seconds(5));
}

TEST(ResidencyTest, Admit) {
  struct Case {
    int running, capacity, queued, max_queue;
    Admission want;
  };
  const std::vector<Case> cases = {
      {0, 2, 0, 0, Admission::kRun},      {1, 2, 0, 0, Admission::kRun},
      {2, 2, 0, 1, Admission::kQueue},    {2, 2, 1, 1, Admission::kReject},
      {2, 2, 0, 0, Admission::kReject},   {1, 2, 1, 4, Admission::kQueue},  // queue is FIFO
      {50, 0, 0, 0, Admission::kRun},  // capacity unknown
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Admit(c.running, c.capacity, c.queued, c.max_queue), c.want)
        << c.running << "/" << c.capacity << " queued " << c.queued << "/" << c.max_queue;
  }
}

TEST(ResidencyTest, InjectFaultSpreadsTheShareEvenly) {
  for (double ratio : {0.0, 0.2, 0.25, 1.0 / 3, 0.5, 1.0}) {
    int failed = 0;
    for (uint64_t n = 0; n < 1000; ++n) failed += InjectFault(n, ratio) ? 1 : 0;
    EXPECT_EQ(failed, static_cast<int>(std::floor(1000 * ratio + 1e-9))) << ratio;
  }
  // Evenly: with 0.2, exactly one of every five consecutive requests.
  for (uint64_t start = 0; start < 50; start += 5) {
    int failed = 0;
    for (uint64_t n = start; n < start + 5; ++n) failed += InjectFault(n, 0.2) ? 1 : 0;
    EXPECT_EQ(failed, 1);
  }
  EXPECT_FALSE(InjectFault(0, std::nan("")));
}

TEST(LlamaProcessTest, ArgsBindLoopbackWithTheWorkersKey) {
  LlamaProcessOptions o;
  o.binary = "/bin/llama-server";
  o.model_path = "/m/a.gguf";
  o.ctx_size = 4096;
  o.parallel = 3;
  o.n_gpu_layers = 99;
  o.api_key = "secret";
  o.extra_args = {"--flash-attn", "on"};
  EXPECT_THAT(LlamaServerArgs(o),
              ElementsAre("/bin/llama-server", "--model", "/m/a.gguf", "--host", "127.0.0.1",
                          "--port", "0", "--ctx-size", "4096", "--parallel", "3", "--threads", "2",
                          "--n-gpu-layers", "99", "--no-warmup", "--metrics", "--api-key",
                          "secret", "--flash-attn", "on"));
  EXPECT_NE(RandomApiKey(), RandomApiKey());
  EXPECT_EQ(RandomApiKey().size(), 48u);
}

TEST(LlamaProcessTest, ResolvesBareNamesOnPath) {
  const std::string dir = ::testing::TempDir();
  const std::string tool = absl::StrCat(dir, "/fake-llama-server");
  std::ofstream(tool) << "#!/bin/sh\n";
  chmod(tool.c_str(), 0755);
  absl::StatusOr<std::string> found =
      ResolveExecutable("fake-llama-server", absl::StrCat("/nonexistent:", dir));
  ASSERT_OK(found.status());
  EXPECT_EQ(*found, tool);
  found = ResolveExecutable(tool, "");
  ASSERT_OK(found.status());
  EXPECT_EQ(*found, tool);
  EXPECT_THAT(ResolveExecutable("fake-llama-server", "/nonexistent:/also-not"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not found on PATH")));
  EXPECT_THAT(ResolveExecutable("", "/bin"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      HasSubstr("not set")));
}

TEST(LlamaProcessTest, MissingBinaryIsAClearError) {
  LlamaProcessOptions o;
  o.binary = "/nonexistent/llama-server";
  o.model_path = "/m/a.gguf";
  EXPECT_THAT(LlamaProcess::Start(o).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not executable")));
}

std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(VerifyModelFileTest, ChecksPresenceMagicAndDigest) {
  const std::string content = std::string("GGUF") + std::string(3 << 20, 'x');  // > one read
  const std::string good = WriteFile("good.gguf", content);
  const std::string digest = crypto::Sha256Hex(content);
  EXPECT_OK(VerifyModelFile(good, ""));
  EXPECT_OK(VerifyModelFile(good, digest));
  EXPECT_THAT(VerifyModelFile(good, std::string(64, '0')),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr(absl::StrCat("sha256 mismatch (expected ", std::string(64, '0'),
                                              ", file has ", digest))));
  EXPECT_THAT(VerifyModelFile(WriteFile("bad.gguf", "<html>not a model</html>"), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a GGUF file")));
  EXPECT_THAT(VerifyModelFile(WriteFile("short.gguf", "GG"), ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not a GGUF file")));
  EXPECT_THAT(VerifyModelFile("/nonexistent/model.gguf", ""),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cannot be read")));
}

TEST(ProtoConvertTest, StatesAndLoad) {
  EXPECT_EQ(ToModelState(Residency::kReady), tiermesh::v1::MODEL_STATE_READY);
  EXPECT_EQ(ToModelState(Residency::kRestarting), tiermesh::v1::MODEL_STATE_UNAVAILABLE);
  EXPECT_EQ(ToModelState(Residency::kFailed), tiermesh::v1::MODEL_STATE_FAILED);
  EXPECT_EQ(ToModelState(Residency::kUnloaded), tiermesh::v1::MODEL_STATE_UNLOADED);

  ModelSnapshot s;
  s.name = "tiny";
  s.residency = Residency::kReady;
  s.capacity = 2;
  s.running = 2;
  s.queued = 1;
  s.max_queue = 1;
  s.scraped = true;
  s.load.slots_busy = 1;  // the scrape lags; the worker's own count wins
  s.load.deferred_requests = 0;
  s.load.kv_cache_usage_ratio = 0.25f;
  tiermesh::v1::ModelLoad load = ToModelLoad(s);
  EXPECT_EQ(load.slots_busy(), 2);
  EXPECT_EQ(load.slots_total(), 2);
  EXPECT_EQ(load.queue_depth(), 1);
  EXPECT_FLOAT_EQ(load.kv_cache_usage_ratio(), 0.25f);
  EXPECT_FALSE(load.accepting());  // slots and queue full
  s.queued = 0;
  EXPECT_TRUE(ToModelLoad(s).accepting());
  s.residency = Residency::kRestarting;
  s.error = "llama-server killed by signal 9";
  EXPECT_FALSE(ToModelLoad(s).accepting());
  EXPECT_EQ(ToModelLoad(s).slots_total(), 0);
  EXPECT_EQ(ToModelInfo(s).unavailable_reason(), "llama-server killed by signal 9");
  s.residency = Residency::kUnloaded;
  EXPECT_TRUE(ToModelLoad(s).accepting());  // loads on demand
}

TEST(ProtoConvertTest, UsageFromUsageElseTimingsElseEstimated) {
  LlamaUsage usage{12, 30, 4};
  LlamaTimings timings;
  timings.prompt_n = 5;
  timings.cache_n = 7;
  timings.predicted_n = 29;
  tiermesh::v1::Usage u = ToUsage(usage, timings, 3);
  EXPECT_EQ(u.prompt_tokens(), 12);
  EXPECT_EQ(u.completion_tokens(), 30);
  EXPECT_EQ(u.total_tokens(), 42);
  EXPECT_FALSE(u.estimated());
  u = ToUsage(absl::nullopt, timings, 3);
  EXPECT_EQ(u.prompt_tokens(), 12);
  EXPECT_EQ(u.completion_tokens(), 29);
  EXPECT_FALSE(u.estimated());
  u = ToUsage(absl::nullopt, absl::nullopt, 3);
  EXPECT_EQ(u.completion_tokens(), 3);
  EXPECT_TRUE(u.estimated());
}

TEST(ProtoConvertTest, CompletionToResponse) {
  LlamaCompletion c;
  c.content = "hello";
  c.tool_calls.push_back({"call_1", "get_weather", R"({"city":"Oslo"})"});
  c.finish_reason = tiermesh::v1::FINISH_REASON_TOOL_CALLS;
  c.usage = LlamaUsage{10, 5, 0};
  tiermesh::v1::GenerateResponse r = ToGenerateResponse(c, "tiny", absl::Milliseconds(1500));
  EXPECT_EQ(r.message().role(), tiermesh::v1::ROLE_ASSISTANT);
  EXPECT_EQ(r.message().content(), "hello");
  ASSERT_EQ(r.message().tool_calls_size(), 1);
  EXPECT_EQ(r.message().tool_calls(0).name(), "get_weather");
  EXPECT_EQ(r.message().tool_calls(0).arguments_json(), R"({"city":"Oslo"})");
  EXPECT_EQ(r.finish_reason(), tiermesh::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(r.model(), "tiny");
  EXPECT_EQ(r.cost().nano_usd(), 0);
  EXPECT_EQ(r.timings().total().seconds(), 1);
  EXPECT_EQ(r.timings().total().nanos(), 500'000'000);
}

TEST(GpuProbeTest, NoLibraryMeansNotFound) {
  EXPECT_THAT(OpenNvmlProbe("/nonexistent/libnvidia-ml.so.1").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot load")));
}

TEST(GpuProbeTest, ReadsEveryGpuThroughNvml) {
  absl::StatusOr<std::unique_ptr<GpuProbe>> probe = OpenNvmlProbe(TIERMESH_FAKE_NVML_PATH);
  ASSERT_OK(probe.status());
  absl::StatusOr<std::vector<GpuSample>> samples = (*probe)->Sample();
  ASSERT_OK(samples.status());
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].index, 0);
  EXPECT_EQ((*samples)[0].name, "Fake GPU A");
  EXPECT_DOUBLE_EQ((*samples)[0].utilization_ratio, 0.37);
  EXPECT_EQ((*samples)[0].memory_used_bytes, 1ull << 30);
  EXPECT_EQ((*samples)[1].memory_total_bytes, 24ull << 30);
  EXPECT_DOUBLE_EQ((*samples)[1].utilization_ratio, 0.80);
}

TEST(GpuProbeTest, InitFailureIsUnavailable) {
  setenv("FAKE_NVML_FAIL_INIT", "1", 1);
  absl::StatusOr<std::unique_ptr<GpuProbe>> probe = OpenNvmlProbe(TIERMESH_FAKE_NVML_PATH);
  unsetenv("FAKE_NVML_FAIL_INIT");
  EXPECT_THAT(probe.status(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("Driver Not Loaded")));
}

}  // namespace
}  // namespace tiermesh::worker

namespace tiermesh::worker {
namespace {

// The binary's start-up contract: a bad config is one clear line and a non-zero exit.
std::string RunWorker(const std::string& args, int* exit_code) {
  const std::string command =
      absl::StrCat(TIERMESH_WORKER_BINARY, " ", args, " --grpc_address 127.0.0.1:0",
                   " --metrics_address 127.0.0.1:0 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  std::string out;
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  const int status = pclose(pipe);
  *exit_code = WEXITSTATUS(status);
  return out;
}

TEST(WorkerBinaryTest, BadConfigsStopStartUpWithOneClearLine) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"models: [{name: a, managed: {model_path: x, paralel: 2}}]", "unknown key"},
      {"models: [{name: a, managed: {model_path: /nonexistent/a.gguf}}]",
       "default model a: model file /nonexistent/a.gguf cannot be read"},
      {absl::StrCat("models: [{name: a, managed: {model_path: ",
                    WriteFile("magic-only.gguf", "GGUF...."), ", binary: /nonexistent/llama-server}}]"),
       "not executable"},
  };
  for (const Case& c : cases) {
    const std::string path = WriteFile("worker-bad.yaml", c.yaml);
    int exit_code = 0;
    const std::string out = RunWorker(absl::StrCat("--config ", path), &exit_code);
    EXPECT_NE(exit_code, 0) << c.yaml;
    EXPECT_THAT(out, HasSubstr("worker: error: ")) << c.yaml;
    EXPECT_THAT(out, HasSubstr(c.message)) << c.yaml;
  }
  int exit_code = 0;
  EXPECT_THAT(RunWorker("--config /nonexistent/worker.yaml", &exit_code),
              HasSubstr("worker: error: "));
  EXPECT_NE(exit_code, 0);
}

}  // namespace
}  // namespace tiermesh::worker
