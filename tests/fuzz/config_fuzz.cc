// Fuzz target for the four services' configuration parsers on any text: the router policy, the
// cloud-proxy, the worker and the classifier service configs, through the shared loader
// (services/common/config: YAML, ${VAR} interpolation, strict schema).
// Input: byte 0 picks the parser; the rest is the file's text.
// Invariants: no crash/UB and no exception escapes (sanitizers; libFuzzer reports an uncaught
// exception as a crash); a refused config always says why, naming the source.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

#include "services/classifier/config.h"
#include "services/cloud_proxy/config.h"
#include "services/common/config/loader.h"
#include "services/router/policy.h"
#include "services/worker/config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckRefusal(const absl::Status& status) {
  if (status.ok()) return;
  FUZZ_CHECK(!status.message().empty());
  FUZZ_CHECK(absl::StartsWith(status.message(), "fuzz.yaml"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace config = tiermesh::config;
  if (size == 0) return 0;
  const absl::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const config::EnvLookup env = config::MapEnv({{"KEY", "sk-test"}, {"PORT", "8080"}});
  switch (data[0] % 4) {
    case 0:
      CheckRefusal(
          config::LoadConfigText(text, "fuzz.yaml", env, tiermesh::router::ParsePolicy).status());
      break;
    case 1:
      CheckRefusal(
          config::LoadConfigText(text, "fuzz.yaml", env, tiermesh::cloud::ParseCloudConfigNode)
              .status());
      break;
    case 2:
      CheckRefusal(
          config::LoadConfigText(text, "fuzz.yaml", env, tiermesh::worker::ParseWorkerConfig)
              .status());
      break;
    default:
      CheckRefusal(config::LoadConfigText(text, "fuzz.yaml", env,
                                          tiermesh::classifier::ParseClassifierServiceConfig)
                       .status());
      break;
  }
  return 0;
}
