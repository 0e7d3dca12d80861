#include "services/common/server/flags.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"

#include "services/common/logging/logger.h"
#include "services/common/metrics/metrics_server.h"
#include "services/common/server/server.h"

// The common flags. They are process-wide by absl's design; only
// ParseCommonFlags (called once from main) reads them.
ABSL_FLAG(std::string, config, "", "Path to the service's YAML config file.");
ABSL_FLAG(std::string, grpc_address, "",
          "gRPC listen address, host:port (port 0: any free port). Overrides the config.");
ABSL_FLAG(std::string, metrics_address, "",
          "Prometheus /metrics listen address, host:port. Overrides the config.");
ABSL_FLAG(std::string, ports_file, "",
          "Write the bound ports here as JSON once listening (for --grpc_address/"
          "--metrics_address with port 0).");
ABSL_FLAG(std::string, log_level, "", "debug, info, warn or error. Overrides the config.");
ABSL_FLAG(std::string, drain_timeout, "",
          "How long in-flight calls may finish after SIGTERM, e.g. 30s or 2m. Overrides the "
          "config.");

namespace tiermesh::server {
namespace {

bool IsFlagArg(absl::string_view arg) { return arg.size() > 1 && arg.front() == '-'; }

}  // namespace

std::string FatalLine(absl::string_view service_name, absl::string_view message) {
  std::string line =
      absl::StrCat(service_name.empty() ? "tiermesh" : service_name, ": error: ", message);
  line = absl::StrReplaceAll(line, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}});
  line.push_back('\n');
  return line;
}

logging::Logger NewServiceLogger(const CommonFlags& flags, absl::string_view service_name) {
  logging::LoggerOptions options;
  options.service = std::string(service_name);
  if (!flags.log_level.empty()) {
    absl::StatusOr<logging::Level> level = logging::ParseLevel(flags.log_level);
    if (!level.ok()) Fatal(service_name, level.status().message());
    options.level = *level;
  }
  return logging::Logger(options);
}

void Fatal(absl::string_view service_name, absl::string_view message) {
  const std::string line = FatalLine(service_name, message);
  std::fflush(stdout);
  // One write(2), so the line is never interleaved with other output.
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  // _Exit, not exit: a half-started process (a metrics endpoint's threads,
  // gRPC's) must not run static destructors under its own feet and print a
  // second, confusing error.
  std::_Exit(1);
}

void FatalIfError(absl::string_view service_name, const absl::Status& status) {
  if (!status.ok()) Fatal(service_name, status.message());
}

absl::StatusOr<std::vector<std::string>> PrepareFlagArgs(const std::vector<std::string>& args,
                                                         const FlagLookup& lookup) {
  std::vector<std::string> out;
  out.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (i == 0 || !IsFlagArg(arg)) {
      out.push_back(arg);
      continue;
    }
    if (arg == "--") {
      out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
      break;
    }
    const size_t dashes = absl::StartsWith(arg, "--") ? 2 : 1;
    const size_t equals = arg.find('=');
    const bool has_value = equals != std::string::npos;
    std::string name = arg.substr(dashes, has_value ? equals - dashes : std::string::npos);
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("malformed flag '", arg, "'"));
    }
    for (char& c : name) {
      if (c == '-') c = '_';
    }
    FlagKind kind = lookup(name);
    if (kind == FlagKind::kUnknown && absl::StartsWith(name, "no") &&
        lookup(absl::string_view(name).substr(2)) == FlagKind::kBool) {
      kind = FlagKind::kBool;
    }
    if (kind == FlagKind::kUnknown) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", arg.substr(0, has_value ? equals : std::string::npos),
                       "' (see --helpfull)"));
    }
    out.push_back(absl::StrCat(arg.substr(0, dashes), name,
                               has_value ? absl::string_view(arg).substr(equals) : ""));
    if (kind == FlagKind::kValue && !has_value && i + 1 < args.size()) {
      out.push_back(args[++i]);  // the value, verbatim even if it starts with '-'
    }
  }
  return out;
}

FlagKind LookupLinkedFlag(absl::string_view name) {
  // absl's usage flags are handled by ParseCommandLine but not listed.
  static const auto* const kUsageFlags = new absl::flat_hash_set<absl::string_view>{
      "help", "helpfull", "helpshort", "helppackage", "version", "only_check_args"};
  static const auto* const kUsageValueFlags =
      new absl::flat_hash_set<absl::string_view>{"helpon", "helpmatch"};
  if (kUsageFlags->contains(name)) return FlagKind::kBool;
  if (kUsageValueFlags->contains(name)) return FlagKind::kValue;
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || flag->IsRetired()) return FlagKind::kUnknown;
  return flag->IsOfType<bool>() ? FlagKind::kBool : FlagKind::kValue;
}

CommonFlags ParseCommonFlags(int argc, char** argv, absl::string_view service_name,
                             absl::string_view usage) {
  // Debian's Abseil is built with its Mutex deadlock detector on: it records every lock-order
  // edge in a global graph, about 5% of a busy router's CPU in a profile. The services' lock
  // orders are covered by tests (and TSan for std::mutex); production does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv, argv + argc);
  absl::StatusOr<std::vector<std::string>> prepared = PrepareFlagArgs(args, LookupLinkedFlag);
  if (!prepared.ok()) Fatal(service_name, prepared.status().message());

  absl::SetProgramUsageMessage(usage.empty() ? absl::StrCat("tiermesh ", service_name, " [flags]")
                                             : std::string(usage));
  std::vector<char*> prepared_argv;
  prepared_argv.reserve(prepared->size() + 1);
  for (std::string& arg : *prepared) prepared_argv.push_back(arg.data());
  prepared_argv.push_back(nullptr);
  // absl reports its own errors (a bad value for a typed flag) as one
  // "ERROR: ..." line and exits 1.
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(prepared->size()), prepared_argv.data());
  if (positional.size() > 1) {
    Fatal(service_name,
          absl::StrCat("unexpected argument '", positional[1], "' (flags look like --name=value)"));
  }

  CommonFlags flags;
  flags.config_path = absl::GetFlag(FLAGS_config);
  flags.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  flags.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  flags.log_level = absl::GetFlag(FLAGS_log_level);
  flags.ports_file = absl::GetFlag(FLAGS_ports_file);
  const std::string drain = absl::GetFlag(FLAGS_drain_timeout);

  if (!flags.grpc_address.empty()) {
    absl::Status valid = ValidateGrpcAddress(flags.grpc_address);
    if (!valid.ok()) Fatal(service_name, absl::StrCat("--grpc_address: ", valid.message()));
  }
  if (!flags.metrics_address.empty()) {
    absl::Status valid = metrics::ValidateHostPort(flags.metrics_address);
    if (!valid.ok()) Fatal(service_name, absl::StrCat("--metrics_address: ", valid.message()));
  }
  if (!flags.log_level.empty()) {
    absl::StatusOr<logging::Level> level = logging::ParseLevel(flags.log_level);
    if (!level.ok()) Fatal(service_name, absl::StrCat("--log_level: ", level.status().message()));
  }
  if (!drain.empty()) {
    absl::Duration timeout;
    if (!absl::ParseDuration(drain, &timeout) || timeout < absl::ZeroDuration() ||
        timeout == absl::InfiniteDuration()) {
      Fatal(service_name,
            absl::StrCat("--drain_timeout: '", drain, "' is not a finite duration like 30s or 2m"));
    }
    flags.drain_timeout = timeout;
  }
  return flags;
}

}  // namespace tiermesh::server
