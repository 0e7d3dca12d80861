// The command line every service shares, parsed the same way in every main():
//   --config FILE  --grpc_address HOST:PORT  --metrics_address HOST:PORT
//   --log_level debug|info|warn|error  --drain_timeout 30s  --ports_file FILE
// Dashed spellings (--grpc-address) are accepted too. An unknown flag, a bad
// value or a stray argument prints ONE line "<service>: error: <why>" and
// exits non-zero. Services may declare more ABSL_FLAGs of their own; read
// flags only in main, and pass values down.
//
//   int main(int argc, char** argv) {
//     server::CommonFlags flags = server::ParseCommonFlags(argc, argv, "router",
//                                                          "tiermesh router: routes LLM requests");
//     absl::StatusOr<RouterConfig> config = LoadRouterConfig(flags.config_path);
//     if (!config.ok()) server::Fatal("router", config.status().message());
//     ...
//   }
#ifndef TIERMESH_SERVICES_COMMON_SERVER_FLAGS_H_
#define TIERMESH_SERVICES_COMMON_SERVER_FLAGS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "services/common/logging/logger.h"

namespace tiermesh::server {

// Values from the common flags. Empty / nullopt: not given on the command
// line, so the config file or the service's default decides.
struct CommonFlags {
  std::string config_path;
  std::string grpc_address;
  std::string metrics_address;
  std::string log_level;
  // --ports_file: see ServerOptions::ports_file.
  std::string ports_file;
  std::optional<absl::Duration> drain_timeout;
};

// Parses argv (exits on any error, see above). Call once, first thing in main: it also turns
// off Abseil's Mutex deadlock detector for the process (see flags.cc).
CommonFlags ParseCommonFlags(int argc, char** argv, absl::string_view service_name,
                             absl::string_view usage = "");

// The service's JSON logger at --log_level (default info); Fatal on a bad level.
[[nodiscard]] logging::Logger NewServiceLogger(const CommonFlags& flags,
                                               absl::string_view service_name);

// Prints "<service>: error: <message>" as one line on stderr and exits 1.
// For bad startup config: the process cannot do its job, so it says why and
// stops before it serves anything.
[[noreturn]] void Fatal(absl::string_view service_name, absl::string_view message);
// Fatal(service_name, status.message()) when `status` is not OK.
void FatalIfError(absl::string_view service_name, const absl::Status& status);

// ---- Pure pieces, exposed for tests. ----

// The one line Fatal prints (newlines in `message` become spaces), with '\n'.
[[nodiscard]] std::string FatalLine(absl::string_view service_name, absl::string_view message);

enum class FlagKind { kUnknown, kBool, kValue };
using FlagLookup = std::function<FlagKind(absl::string_view name)>;

// Turns '-' into '_' in flag NAMES ("--grpc-address=x" becomes
// "--grpc_address=x"; values, positional arguments and everything after "--"
// are left alone) and rejects the first unknown flag. args[0] is the program.
// A non-boolean flag given without "=" takes the next argument as its value;
// "--noNAME" is known when NAME is a boolean flag.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> PrepareFlagArgs(
    const std::vector<std::string>& args, const FlagLookup& lookup);

// Looks names up among the flags linked into this binary (absl reflection),
// plus absl's built-in usage flags (--help, --helpfull, --version, ...).
[[nodiscard]] FlagKind LookupLinkedFlag(absl::string_view name);

}  // namespace tiermesh::server

#endif  // TIERMESH_SERVICES_COMMON_SERVER_FLAGS_H_
