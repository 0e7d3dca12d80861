// Loads a service's config file: read the file, parse one YAML document
// (errors carry line and column), expand ${ENV} in every scalar value (env.h),
// then run the service's pure parse function (schema.h). Every error is an
// absl::Status whose message starts with the file name; no yaml-cpp exception
// leaves this layer, not even one thrown by a parse function that used
// yaml-cpp directly.
//
//   absl::StatusOr<RouterConfig> config =
//       config::LoadConfigFile(config_path, config::ProcessEnv(), ParseRouterConfig);
//   if (!config.ok()) {            // e.g. "router.yaml: unknown key 'tiers[1].modle'
//     std::cerr << config.status().message() << "\n";      //  (line 7, column 5)"
//     return 2;
//   }
//
// For hot reload, feed FileWatcher's new content to LoadConfigText with the
// same parse function, and keep the old config when it returns an error.
#ifndef TIERMESH_SERVICES_COMMON_CONFIG_LOADER_H_
#define TIERMESH_SERVICES_COMMON_CONFIG_LOADER_H_

#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "yaml-cpp/yaml.h"

#include "services/common/config/env.h"

namespace tiermesh::config {

// Files larger than this are refused (a config is never this big; it also
// keeps a mistaken /dev/zero from reading forever).
inline constexpr size_t kMaxConfigFileBytes = size_t{16} << 20;

// The whole file. NotFound, PermissionDenied, FailedPrecondition (a
// directory, too large) or another errno-derived code; messages name `path`.
[[nodiscard]] absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Parses exactly one YAML document (an empty text is a null node).
// InvalidArgument "<source>: line L, column C: <problem>" on malformed YAML
// or more than one document.
[[nodiscard]] absl::StatusOr<YAML::Node> ParseYaml(absl::string_view text,
                                                   absl::string_view source_name);

// Expands ${...} (env.h) in every scalar value of the tree, in place; keys
// are left alone. A node reached twice through YAML aliases is expanded once.
// Errors carry the value's path and position ("providers[1].api_key:
// environment variable 'GROQ_API_KEY' is not set (line 9, column 14)").
[[nodiscard]] absl::Status InterpolateEnvInTree(const YAML::Node& root, const EnvLookup& env);

namespace internal {
// "<source>: <message>", same code.
[[nodiscard]] absl::Status WithSource(const absl::Status& status, absl::string_view source);
// A yaml-cpp exception as InvalidArgument, with its position.
[[nodiscard]] absl::Status FromYamlException(const YAML::Exception& e, absl::string_view source);
}  // namespace internal

// ParseYaml + InterpolateEnvInTree + parse(root), with `source_name` in every
// error. `parse` is any callable `absl::StatusOr<T>(const YAML::Node&)`.
template <typename ParseFn>
auto LoadConfigText(absl::string_view text, absl::string_view source_name, const EnvLookup& env,
                    ParseFn&& parse) -> std::invoke_result_t<ParseFn&, const YAML::Node&> {
  using Result = std::invoke_result_t<ParseFn&, const YAML::Node&>;
  absl::StatusOr<YAML::Node> root = ParseYaml(text, source_name);
  if (!root.ok()) return root.status();
  absl::Status s = InterpolateEnvInTree(*root, env);
  if (!s.ok()) return internal::WithSource(s, source_name);
  try {
    Result result = parse(static_cast<const YAML::Node&>(*root));
    if (!result.ok()) return internal::WithSource(result.status(), source_name);
    return result;
  } catch (const YAML::Exception& e) {
    return internal::FromYamlException(e, source_name);
  }
}

// ReadFileToString(path) + LoadConfigText(content, path, env, parse).
template <typename ParseFn>
auto LoadConfigFile(const std::string& path, const EnvLookup& env, ParseFn&& parse)
    -> std::invoke_result_t<ParseFn&, const YAML::Node&> {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return LoadConfigText(*text, path, env, std::forward<ParseFn>(parse));
}

}  // namespace tiermesh::config

#endif  // TIERMESH_SERVICES_COMMON_CONFIG_LOADER_H_
