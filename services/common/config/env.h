// The process environment as an injected function, and `${VAR}` interpolation.
// Code never calls getenv itself: main passes ProcessEnv() down, tests pass
// MapEnv({...}), so that what a service reads from its environment is visible
// at the call site and testable.
//
//   config::EnvLookup env = config::ProcessEnv();          // in main only
//   config::EnvLookup env = config::MapEnv({{"PORT", "9000"}});  // in tests
//   absl::StatusOr<std::string> s = config::InterpolateEnv("0.0.0.0:${PORT:-8080}", env);
//
// Interpolation rules (a small, strict subset of POSIX/compose syntax):
//   ${NAME}            the value of NAME; an error naming NAME when it is unset
//   ${NAME:-default}   NAME when set and non-empty, else `default`
//   ${NAME-default}    NAME when set (even empty), else `default`
//   $${                a literal "${" (no expansion)
//   $NAME, a lone $    left as they are (only the braced form expands)
// NAME is [A-Za-z_][A-Za-z0-9_]*. A default is literal text up to the first
// '}': it cannot contain '}' or a nested ${...} (an error says so rather than
// guessing). Errors name the variable, never a value (values may be secrets).
#ifndef TIERMESH_SERVICES_COMMON_CONFIG_ENV_H_
#define TIERMESH_SERVICES_COMMON_CONFIG_ENV_H_

#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace tiermesh::config {

// The value of an environment variable, or nullopt when it is unset.
using EnvLookup = std::function<absl::optional<std::string>(absl::string_view name)>;

// Reads the real process environment (getenv). Call it in main and pass the
// result down; nothing else should read the environment.
[[nodiscard]] EnvLookup ProcessEnv();

// A fixed environment, for tests and tools.
[[nodiscard]] EnvLookup MapEnv(std::map<std::string, std::string> vars);

// Expands ${...} in `text` (rules above). InvalidArgument on an unset
// variable without a default, an unterminated "${", a bad name or modifier.
[[nodiscard]] absl::StatusOr<std::string> InterpolateEnv(absl::string_view text,
                                                         const EnvLookup& env);

}  // namespace tiermesh::config

#endif  // TIERMESH_SERVICES_COMMON_CONFIG_ENV_H_
