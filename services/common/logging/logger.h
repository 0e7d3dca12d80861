// Structured logs: one JSON object per line, written with one write per line,
// to stderr by default (an injected LogSink in tests). A Logger is a cheap,
// copyable handle that is passed to what needs it; there is no global logger.
//
//   logging::LoggerOptions options;
//   options.service = "router";
//   options.level = logging::Level::kInfo;       // sink: stderr, clock: absl::Now
//   logging::Logger logger(std::move(options));  // main owns it and passes it down
//   logger.Info("request served", {{"tier", "small"}, {"latency_ms", 12.5}, {"ok", true}});
//   // {"ts":"2026-11-22T10:00:00.123456Z","level":"info","service":"router",
//   //  "msg":"request served","tier":"small","latency_ms":12.5,"ok":true}
//
//   logging::Logger rpc = logger.With({{"method", "/tiermesh.v1.RouterService/Chat"}});
//   rpc.Warn("upstream failed", {{"api_key", key}});   // "api_key":"[REDACTED]"
//
// What a line holds: "ts" (RFC 3339, UTC, microseconds), "level", "service",
// "msg", then "trace_id"/"span_id" when a span is active (bound with
// WithTraceIds(), or installed on this thread with a logging::ScopedTraceIds,
// which tracing::Span::Activate() returns), then the bound fields, then the
// call's fields. A field whose key is reserved ("ts", "level", ...) is written
// as "field.<key>" so that it cannot forge the line's own keys.
//
// Secrets: the value of a field whose key IsSensitiveKey() is replaced by
// "[REDACTED]" whatever its type; the message and string values also go
// through RedactSecrets() (bearer tokens, sk-... keys, ?key=...) unless
// `redact_free_text` is turned off. Invalid UTF-8 becomes U+FFFD, so a line
// is always valid JSON.
#ifndef TIERMESH_SERVICES_COMMON_LOGGING_LOGGER_H_
#define TIERMESH_SERVICES_COMMON_LOGGING_LOGGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

#include "services/common/logging/trace_context.h"

namespace tiermesh::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn", "error".
[[nodiscard]] absl::string_view LevelName(Level level);
// Parses a level name as written in config or flags: debug, info, warn (or
// warning), error; any case. Anything else is an InvalidArgument error.
[[nodiscard]] absl::StatusOr<Level> ParseLevel(absl::string_view name);

// A field's value: a string, a signed or unsigned integer, a double, a bool or
// null. The constructors are implicit so that `{"key", value}` just works;
// `const char*` is a string (not a bool), an absl::Status is its ToString().
class FieldValue {
 public:
  using Storage = std::variant<std::monostate, std::string, int64_t, uint64_t, double, bool>;

  FieldValue() = default;  // null
  FieldValue(const char* s) : value_(s == nullptr ? Storage() : Storage(std::string(s))) {}
  FieldValue(const std::string& s) : value_(s) {}
  FieldValue(std::string&& s) : value_(std::move(s)) {}
  FieldValue(absl::string_view s) : value_(std::string(s)) {}
#ifndef ABSL_USES_STD_STRING_VIEW
  FieldValue(std::string_view s) : value_(std::string(s)) {}
#endif
  FieldValue(bool b) : value_(b) {}
  FieldValue(double d) : value_(d) {}
  FieldValue(float f) : value_(static_cast<double>(f)) {}
  template <typename T,
            std::enable_if_t<
                std::is_integral_v<T> && std::is_signed_v<T> && !std::is_same_v<T, bool>, int> = 0>
  FieldValue(T v) : value_(static_cast<int64_t>(v)) {}
  template <typename T, std::enable_if_t<std::is_integral_v<T> && std::is_unsigned_v<T> &&
                                             !std::is_same_v<T, bool>,
                                         int> = 0>
  FieldValue(T v) : value_(static_cast<uint64_t>(v)) {}
  FieldValue(const absl::Status& status) : value_(status.ToString()) {}

  const Storage& storage() const { return value_; }

 private:
  Storage value_;
};

struct Field {
  Field(absl::string_view k, FieldValue v) : key(k), value(std::move(v)) {}
  std::string key;
  FieldValue value;
};

// Where finished lines go. `line` is one complete JSON object ending in '\n';
// Write must be thread-safe and must write the line as one unit.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(absl::string_view line) = 0;
};

// Writes each line with a single write(2) on a file descriptor (2 = stderr),
// retrying only the unwritten rest of a short write, under a lock so that
// lines from different threads never interleave. The fd is not closed.
class FdSink final : public LogSink {
 public:
  explicit FdSink(int fd) : fd_(fd) {}
  void Write(absl::string_view line) override;

 private:
  const int fd_;
  std::mutex mu_;
};

// Writes to a std::ostream the caller keeps alive (tests, tools).
class OstreamSink final : public LogSink {
 public:
  explicit OstreamSink(std::ostream* out) : out_(out) {}
  void Write(absl::string_view line) override;

 private:
  std::ostream* const out_;
  std::mutex mu_;
};

// Keeps lines in memory, for tests that check what was logged.
class MemorySink final : public LogSink {
 public:
  void Write(absl::string_view line) override;
  // The lines so far, each without its trailing '\n'.
  std::vector<std::string> Lines() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

struct LoggerOptions {
  // The "service" of every line: "router", "worker", ...
  std::string service;
  // Lines below this level are dropped (see also Logger::SetLevel).
  Level level = Level::kInfo;
  // Defaults to an FdSink on stderr.
  std::shared_ptr<LogSink> sink;
  // Defaults to absl::Now.
  std::function<absl::Time()> clock;
  // Run RedactSecrets over the message and string values (sensitive keys are
  // redacted regardless).
  bool redact_free_text = true;
};

class Logger {
 public:
  explicit Logger(LoggerOptions options);
  // A logger that writes nothing, for code paths and tests that need one.
  static Logger Discard();

  // A logger that adds `fields` to every line; it shares this logger's sink
  // and level.
  [[nodiscard]] Logger With(std::initializer_list<Field> fields) const;
  [[nodiscard]] Logger With(absl::Span<const Field> fields) const;
  // A logger whose lines carry these ids instead of the thread's current ones
  // (for async code, where the thread-local does not follow the request).
  [[nodiscard]] Logger WithTraceIds(std::string trace_id, std::string span_id) const;

  // Changes the threshold of this logger and of every logger derived from the
  // same root (e.g. on a config reload). Thread-safe.
  void SetLevel(Level level) const;
  Level level() const;
  bool Enabled(Level level) const;

  void Log(Level level, absl::string_view msg, absl::Span<const Field> fields) const;
  void Debug(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kDebug, msg, fields);
  }
  void Info(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kInfo, msg, fields);
  }
  void Warn(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kWarn, msg, fields);
  }
  void Error(absl::string_view msg, std::initializer_list<Field> fields = {}) const {
    Log(Level::kError, msg, fields);
  }

 private:
  struct Core {
    std::string service;
    std::atomic<Level> level;
    std::shared_ptr<LogSink> sink;  // null: discard
    std::function<absl::Time()> clock;
    bool redact_free_text;
  };
  Logger() = default;

  std::shared_ptr<Core> core_;
  std::vector<Field> bound_;
  std::shared_ptr<const TraceIds> trace_ids_;  // null: use CurrentTraceIds()
};

// Appends `s` to `out` as a JSON string literal (quotes included), escaping
// what JSON requires and replacing invalid UTF-8 with U+FFFD. Exposed for
// code that writes small JSON by hand (and for tests).
void AppendJsonString(std::string* out, absl::string_view s);
// Appends the shortest decimal that reads back as `d`; NaN and infinities,
// which JSON numbers cannot hold, as the strings "NaN", "Infinity" and
// "-Infinity" (the proto3 JSON spelling).
void AppendJsonDouble(std::string* out, double d);

}  // namespace tiermesh::logging

#endif  // TIERMESH_SERVICES_COMMON_LOGGING_LOGGER_H_
