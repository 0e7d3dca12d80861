#include "services/common/logging/logger.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "services/common/logging/redact.h"
#include "services/common/text/utf8.h"

namespace tiermesh::logging {
namespace {

constexpr absl::string_view kReservedKeys[] = {"ts",  "level",    "service",
                                               "msg", "trace_id", "span_id"};

bool IsReservedKey(absl::string_view key) {
  for (absl::string_view reserved : kReservedKeys) {
    if (key == reserved) return true;
  }
  return false;
}

void AppendValue(std::string* out, const FieldValue& value, bool redact_free_text) {
  struct Visitor {
    std::string* out;
    bool redact;
    void operator()(std::monostate) const { out->append("null"); }
    void operator()(const std::string& s) const {
      AppendJsonString(out, redact ? RedactSecrets(s) : s);
    }
    void operator()(int64_t v) const { absl::StrAppend(out, v); }
    void operator()(uint64_t v) const { absl::StrAppend(out, v); }
    void operator()(double v) const { AppendJsonDouble(out, v); }
    void operator()(bool v) const { out->append(v ? "true" : "false"); }
  };
  std::visit(Visitor{out, redact_free_text}, value.storage());
}

void AppendField(std::string* out, const Field& field, bool redact_free_text) {
  out->push_back(',');
  AppendJsonString(out, IsReservedKey(field.key) ? absl::StrCat("field.", field.key) : field.key);
  out->push_back(':');
  if (IsSensitiveKey(field.key)) {
    AppendJsonString(out, kRedacted);
  } else {
    AppendValue(out, field.value, redact_free_text);
  }
}

// Writes `value` as exactly `digits` decimal digits.
void AppendDigits(std::string* out, int64_t value, int digits) {
  char buf[20];
  for (int i = digits - 1; i >= 0; --i) {
    buf[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(buf, static_cast<size_t>(digits));
}

// "2026-11-18T11:06:40.123456Z". Hand-rolled because absl::FormatTime costs
// more than the rest of a log line; days-to-date is H. Hinnant's
// civil_from_days.
void AppendTimestamp(std::string* out, absl::Time t) {
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t secs = micros / 1000000;
  int64_t frac = micros % 1000000;
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  year = std::min<int64_t>(std::max<int64_t>(year, 0), 9999);  // absurd clocks stay 4 digits
  AppendDigits(out, year, 4);
  out->push_back('-');
  AppendDigits(out, month, 2);
  out->push_back('-');
  AppendDigits(out, day, 2);
  out->push_back('T');
  AppendDigits(out, sod / 3600, 2);
  out->push_back(':');
  AppendDigits(out, sod / 60 % 60, 2);
  out->push_back(':');
  AppendDigits(out, sod % 60, 2);
  out->push_back('.');
  AppendDigits(out, frac, 6);
  out->push_back('Z');
}

}  // namespace

void AppendJsonString(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->reserve(out->size() + s.size() + 2);
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = text::Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for each invalid byte
        ++i;
      } else {
        out->append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendJsonDouble(std::string* out, double d) {
  if (std::isnan(d)) {
    out->append("\"NaN\"");
    return;
  }
  if (std::isinf(d)) {
    out->append(d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char buf[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  out->append(buf);
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "unknown";
}

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warn" || lower == "warning") return Level::kWarn;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", name, "' (expected debug, info, warn or error)"));
}

void FdSink::Write(absl::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere to report a failing log stream; drop the line.
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void OstreamSink::Write(absl::string_view line) {
  std::lock_guard<std::mutex> lock(mu_);
  out_->write(line.data(), static_cast<std::streamsize>(line.size()));
  out_->flush();
}

void MemorySink::Write(absl::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  std::lock_guard<std::mutex> lock(mu_);
  lines_.emplace_back(line);
}

std::vector<std::string> MemorySink::Lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

Logger::Logger(LoggerOptions options) : core_(std::make_shared<Core>()) {
  core_->service = std::move(options.service);
  core_->level.store(options.level, std::memory_order_relaxed);
  core_->sink = options.sink != nullptr ? std::move(options.sink) : std::make_shared<FdSink>(2);
  core_->clock = options.clock ? std::move(options.clock) : [] { return absl::Now(); };
  core_->redact_free_text = options.redact_free_text;
}

Logger Logger::Discard() {
  Logger logger;
  logger.core_ = std::make_shared<Core>();
  logger.core_->level.store(Level::kError, std::memory_order_relaxed);
  logger.core_->clock = [] { return absl::Now(); };
  logger.core_->redact_free_text = true;
  return logger;
}

Logger Logger::With(std::initializer_list<Field> fields) const {
  return With(absl::Span<const Field>(fields.begin(), fields.size()));
}

Logger Logger::With(absl::Span<const Field> fields) const {
  Logger child = *this;
  child.bound_.insert(child.bound_.end(), fields.begin(), fields.end());
  return child;
}

Logger Logger::WithTraceIds(std::string trace_id, std::string span_id) const {
  Logger child = *this;
  child.trace_ids_ =
      std::make_shared<const TraceIds>(TraceIds{std::move(trace_id), std::move(span_id)});
  return child;
}

void Logger::SetLevel(Level level) const { core_->level.store(level, std::memory_order_relaxed); }

Level Logger::level() const { return core_->level.load(std::memory_order_relaxed); }

bool Logger::Enabled(Level level) const {
  return core_->sink != nullptr &&
         static_cast<int>(level) >= static_cast<int>(core_->level.load(std::memory_order_relaxed));
}

void Logger::Log(Level level, absl::string_view msg, absl::Span<const Field> fields) const {
  if (!Enabled(level)) return;
  const bool redact = core_->redact_free_text;
  std::string line;
  line.reserve(160 + msg.size());
  line.append("{\"ts\":\"");
  AppendTimestamp(&line, core_->clock());
  line.append("\",\"level\":\"");
  line.append(LevelName(level).data(), LevelName(level).size());
  line.append("\",\"service\":");
  AppendJsonString(&line, core_->service);
  line.append(",\"msg\":");
  AppendJsonString(&line, redact ? RedactSecrets(msg) : std::string(msg));
  const TraceIds* ids = trace_ids_ != nullptr ? trace_ids_.get() : CurrentTraceIds();
  if (ids != nullptr) {
    line.append(",\"trace_id\":");
    AppendJsonString(&line, ids->trace_id);
    line.append(",\"span_id\":");
    AppendJsonString(&line, ids->span_id);
  }
  for (const Field& field : bound_) AppendField(&line, field, redact);
  for (const Field& field : fields) AppendField(&line, field, redact);
  line.append("}\n");
  core_->sink->Write(line);
}

}  // namespace tiermesh::logging
