// The cloud-proxy's provider configuration (YAML) and key resolution.
//
//   ASSIGN_OR_RETURN(CloudConfig config, ParseCloudConfig(yaml_text));
//   absl::StatusOr<std::string> key = ResolveKey(config.providers[0].key, env, read_file);
//
// Example (keys never appear in the text: `api_key` names an environment
// variable, `api_key_file` a file; literal keys are rejected):
//
//   providers:
//     - name: openrouter                 # [a-z0-9_-], unique; used in metrics
//       type: openai_compatible          # openai_compatible | anthropic | gemini
//       base_url: https://openrouter.ai/api/v1   # default per type (see below)
//       api_key: ${OPENROUTER_API_KEY}   # or: api_key_file: /run/secrets/openrouter
//       headers:                         # extra headers; values may use ${VAR}
//         HTTP-Referer: https://example.org
//         X-Title: tiermesh
//       limits: {requests_per_minute: 60, tokens_per_minute: 100000}   # 0/absent: none
//       max_concurrency: 16              # 0: unlimited
//       connect_timeout: 10s
//       idle_timeout: 60s                # a stream silent this long is cut (stalled)
//       stream_include_usage: true       # openai_compatible: stream_options.include_usage
//       anthropic_version: "2023-06-01"  # anthropic only
//       models:
//         - name: llama-8b-cloud         # the name ListModels shows; unique across providers
//           upstream: meta-llama/llama-3.1-8b-instruct   # the provider's id (default: name)
//           context_window: 131072
//           max_output_tokens: 4096      # default max_tokens (Anthropic requires one)
//           supports_tools: true
//           supports_streaming: true
//           supports_top_k: false        # openai_compatible: forward top_k (vLLM, llama-server)
//           max_tokens_field: max_tokens # openai_compatible: or max_completion_tokens
//           price: {input_usd_per_mtok: "0.05", output_usd_per_mtok: "0.08",
//                   cached_input_usd_per_mtok: "0.01"}   # decimal text (or plain numbers)
//
// Default base URLs: openai_compatible https://api.openai.com/v1, anthropic
// https://api.anthropic.com, gemini https://generativelanguage.googleapis.com.
// Decoding is the strict one of services/common/config (schema.h): unknown
// keys are errors with a "did you mean", and errors carry path, line and
// column.
//
// Do NOT load this file through config::LoadConfigText/LoadConfigFile: they
// expand ${VAR} in every value, which would put the keys themselves into the
// tree (rejected here as literal keys) and fail the whole file when one key
// is unset. Use config::ParseYaml + ParseCloudConfigNode (or ParseCloudConfig):
// `api_key: ${VAR}` stays a variable name, resolved by ResolveKey at start-up,
// and an unset key only makes that provider unavailable (offline by default).
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_CONFIG_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "yaml-cpp/yaml.h"

#include "services/cloud_proxy/http_types.h"
#include "services/cloud_proxy/pricing.h"
#include "services/cloud_proxy/provider_kind.h"
#include "services/cloud_proxy/rate_limiter.h"
#include "services/common/config/env.h"

namespace tiermesh::cloud {

struct ModelConfig {
  std::string name;
  std::string upstream;
  int32_t context_window = 0;
  int32_t max_output_tokens = 0;  // 0: provider default (Anthropic: 4096)
  bool supports_tools = true;
  bool supports_streaming = true;
  bool supports_top_k = false;
  std::string max_tokens_field = "max_tokens";
  Price price;
};

// Where a provider's key comes from. Never the key itself.
struct KeySource {
  enum class Kind { kNone, kEnv, kFile };
  Kind kind = Kind::kNone;
  std::string ref;  // variable name or file path
};

struct ProviderConfig {
  std::string name;
  ProviderKind kind = ProviderKind::kOpenAiCompatible;
  std::string base_url;  // no trailing '/'
  KeySource key;
  Headers headers;  // values may still hold ${VAR}; see ResolveHeaders
  RateLimits limits;
  int32_t max_concurrency = 0;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(60);
  bool stream_include_usage = true;
  std::string anthropic_version = "2023-06-01";
  std::vector<ModelConfig> models;
};

struct CloudConfig {
  std::vector<ProviderConfig> providers;  // may be empty: the proxy runs offline
};

// Parses the YAML text (errors name `source_name`, e.g. the file path).
[[nodiscard]] absl::StatusOr<CloudConfig> ParseCloudConfig(
    absl::string_view yaml_text, absl::string_view source_name = "cloud config");
// Parses an already loaded tree (see the note above about ${VAR}).
[[nodiscard]] absl::StatusOr<CloudConfig> ParseCloudConfigNode(const YAML::Node& root);

// Looks up an environment variable (injected: the library never calls getenv;
// main passes config::ProcessEnv()).
using EnvLookup = tiermesh::config::EnvLookup;
// Reads a whole file (injected).
using FileReader = std::function<absl::StatusOr<std::string>(const std::string& path)>;

// The key, trimmed of surrounding whitespace. NOT_FOUND (provider then
// reported unavailable) when none is configured, the variable is unset or
// empty, or the file is missing/empty. Messages name the variable or file,
// never the value.
[[nodiscard]] absl::StatusOr<std::string> ResolveKey(const KeySource& source, const EnvLookup& env,
                                                     const FileReader& read_file);

// Expands ${VAR} in header values. NOT_FOUND for an unset variable.
[[nodiscard]] absl::StatusOr<Headers> ResolveHeaders(const Headers& headers, const EnvLookup& env);

// Reads a file from disk (for main to inject as FileReader; it is
// config::ReadFileToString).
[[nodiscard]] absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_CONFIG_H_
