#include "services/cloud_proxy/errors.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

#include "services/cloud_proxy/json_util.h"
#include "services/common/status/status.h"
#include "services/common/text/utf8.h"

namespace tiermesh::cloud {
namespace {

constexpr size_t kMaxMessageBytes = 400;
constexpr size_t kMaxRawBodyBytes = 200;
constexpr absl::string_view kRedacted = "[REDACTED]";

// Longest delay accepted from a header (a bogus "retry in 300 years" is
// ignored rather than overflowing).
constexpr double kMaxRetryAfterSeconds = 7.0 * 24 * 3600;

// The HTTP status an error type stands for when it arrives inside a 200
// stream. OpenAI and Anthropic share most spellings.
struct TypeStatus {
  absl::string_view type;
  int http_status;
};
constexpr TypeStatus kTypeStatus[] = {
    // Anthropic error types (its "Errors" page).
    {"invalid_request_error", 400},
    {"authentication_error", 401},
    {"billing_error", 402},
    {"permission_error", 403},
    {"not_found_error", 404},
    {"request_too_large", 413},
    {"rate_limit_error", 429},
    {"api_error", 500},
    {"timeout_error", 504},
    {"overloaded_error", 529},
    // OpenAI error types/codes.
    {"rate_limit_exceeded", 429},
    {"insufficient_quota", 429},
    {"tokens", 429},
    {"requests", 429},
    {"server_error", 500},
    {"context_length_exceeded", 400},
    // Gemini (google.rpc.Code names, the HTTP status Google maps each to).
    {"INVALID_ARGUMENT", 400},
    {"FAILED_PRECONDITION", 400},
    {"OUT_OF_RANGE", 400},
    {"UNAUTHENTICATED", 401},
    {"PERMISSION_DENIED", 403},
    {"NOT_FOUND", 404},
    {"ABORTED", 409},
    {"ALREADY_EXISTS", 409},
    {"RESOURCE_EXHAUSTED", 429},
    {"CANCELLED", 499},
    {"UNKNOWN", 500},
    {"INTERNAL", 500},
    {"DATA_LOSS", 500},
    {"UNIMPLEMENTED", 501},
    {"UNAVAILABLE", 503},
    {"DEADLINE_EXCEEDED", 504},
};

int StatusForType(absl::string_view type) {
  for (const auto& entry : kTypeStatus) {
    if (entry.type == type) return entry.http_status;
  }
  return 0;
}

int EffectiveHttpStatus(int http_status, const ProviderError& error) {
  if (http_status >= 300) return http_status;
  if (error.numeric_code >= 400 && error.numeric_code <= 599) return error.numeric_code;
  for (absl::string_view s : {absl::string_view(error.status), absl::string_view(error.code),
                              absl::string_view(error.type)}) {
    if (int mapped = StatusForType(s); mapped != 0) return mapped;
  }
  // An unrecognised error inside a stream is the server's fault.
  return 500;
}

absl::StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 402:
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
    case 409:
      return absl::StatusCode::kUnavailable;
    case 413:
      return absl::StatusCode::kOutOfRange;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 499:
      return absl::StatusCode::kCancelled;
    default:
      break;
  }
  if (status >= 500 && status <= 599) return absl::StatusCode::kUnavailable;
  return absl::StatusCode::kUnknown;
}

bool ContainsAny(absl::string_view haystack, std::initializer_list<absl::string_view> needles) {
  for (absl::string_view n : needles) {
    if (absl::StrContains(haystack, n)) return true;
  }
  return false;
}

bool IsContextLengthError(const ProviderError& error, int effective_status) {
  if (error.code == "context_length_exceeded" || error.type == "context_length_exceeded") {
    return true;
  }
  if (effective_status < 400 || effective_status >= 500) return false;
  const std::string message = absl::AsciiStrToLower(error.message);
  return ContainsAny(message,
                     {"context_length_exceeded", "maximum context length", "context length",
                      "context window", "prompt is too long", "input is too long",
                      "exceeds the maximum number of tokens", "input token count"});
}

bool IsContentPolicyError(const ProviderError& error, int effective_status) {
  for (absl::string_view s : {absl::string_view(error.code), absl::string_view(error.type)}) {
    if (s == "content_filter" || s == "content_policy_violation" || s == "content_policy") {
      return true;
    }
  }
  if (effective_status < 400 || effective_status >= 500) return false;
  const std::string message = absl::AsciiStrToLower(error.message);
  return ContainsAny(message, {"content management policy", "content policy", "safety system"});
}

std::string ProviderReason(const ProviderError& error, int effective_status) {
  for (const std::string* s : {&error.code, &error.type, &error.status}) {
    if (!s->empty()) return *s;
  }
  return absl::StrCat("http_", effective_status);
}

std::string Truncate(absl::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text::RepairUtf8(text);
  return text::RepairUtf8(text.substr(0, max_bytes)) + "...";
}

absl::optional<absl::Duration> SecondsToDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxRetryAfterSeconds) {
    return absl::nullopt;
  }
  return absl::Milliseconds(std::ceil(seconds * 1000.0));
}

absl::optional<absl::Duration> ParseNumberSeconds(absl::string_view value) {
  if (value.empty()) return absl::nullopt;
  for (char c : value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '.') return absl::nullopt;
  }
  double seconds = 0;
  if (!absl::SimpleAtod(value, &seconds)) return absl::nullopt;
  return SecondsToDuration(seconds);
}

// A reset header: a Go-style duration ("6m0s", "12ms", "1.5s"), plain
// seconds, or an RFC 3339 time.
absl::optional<absl::Duration> ParseResetValue(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (auto seconds = ParseNumberSeconds(value)) return seconds;
  absl::Duration d;
  if (absl::ParseDuration(value, &d)) {
    if (d < absl::ZeroDuration()) return absl::nullopt;
    return SecondsToDuration(absl::ToDoubleSeconds(d));
  }
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, value, &t, &err)) {
    return SecondsToDuration(std::max(0.0, absl::ToDoubleSeconds(t - now)));
  }
  return absl::nullopt;
}

absl::optional<absl::Duration> RetryAfterHeaderOnly(const Headers& headers, absl::Time now) {
  if (auto ms = FindHeader(headers, "retry-after-ms")) {
    double value = 0;
    if (absl::SimpleAtod(absl::StripAsciiWhitespace(*ms), &value)) {
      if (auto d = SecondsToDuration(value / 1000.0)) return d;
    }
  }
  if (auto ra = FindHeader(headers, "retry-after")) {
    if (auto d = ParseRetryAfter(*ra, now)) return d;
  }
  return absl::nullopt;
}

bool IsKeyChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

bool IsTokenChar(char c) {
  return IsKeyChar(c) || c == '.' || c == '/' || c == '+' || c == '=' || c == '~';
}

struct KeyShape {
  absl::string_view prefix;
  size_t min_tail;
  bool keep_prefix;  // "Bearer " and "key=" stay readable, the value does not
  bool token_chars;  // bearer tokens may hold . / + = ~
  bool case_insensitive;
};
constexpr KeyShape kKeyShapes[] = {
    {"sk-", 6, false, false, false},   {"AIza", 10, false, false, false},
    {"gsk_", 10, false, false, false}, {"xai-", 10, false, false, false},
    {"Bearer ", 1, true, true, true},  {"key=", 8, true, true, true},
};

}  // namespace

absl::Status WithRetryAfter(absl::Status status, absl::Duration delay) {
  if (status.ok()) return status;
  const int64_t ms =
      std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(delay, absl::Milliseconds(1))));
  status.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(ms)));
  return status;
}

absl::optional<absl::Duration> GetRetryAfter(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterPayload);
  if (!payload) return absl::nullopt;
  int64_t ms = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &ms) || ms < 0) return absl::nullopt;
  return absl::Milliseconds(ms);
}

ProviderError ParseProviderError(absl::string_view body) {
  ProviderError out;
  absl::StatusOr<Json> parsed = ParseJson(body, "error body");
  if (parsed.ok()) {
    const Json* root = &*parsed;
    if (root->is_array() && !root->empty()) root = &(*root)[0];
    const Json* error = Field(*root, "error");
    if (error != nullptr && error->is_object()) {
      out.type = StringOr(*error, "type");
      out.message = StringOr(*error, "message");
      out.status = StringOr(*error, "status");
      if (const Json* code = Field(*error, "code")) {
        if (code->is_string()) {
          out.code = code->get<std::string>();
        } else if (auto n = IntField(*error, "code"); n && *n < 1000) {
          out.numeric_code = static_cast<int>(*n);
        }
      }
      if (const Json* details = Field(*error, "details"); details && details->is_array()) {
        for (const Json& d : *details) {
          if (absl::EndsWith(StringOr(d, "@type"), "google.rpc.ErrorInfo")) {
            out.info_reason = StringOr(d, "reason");
          }
          if (absl::EndsWith(StringOr(d, "@type"), "google.rpc.RetryInfo")) {
            absl::Duration delay;
            if (absl::ParseDuration(StringOr(d, "retryDelay"), &delay) &&
                delay >= absl::ZeroDuration()) {
              out.retry_delay = delay;
            }
          }
        }
      }
      return out;
    }
    if (error != nullptr && error->is_string()) {
      out.message = error->get<std::string>();
      return out;
    }
    out.message = StringOr(*root, "message");
    if (!out.message.empty()) return out;
  }
  out.message = Truncate(absl::StripAsciiWhitespace(body), kMaxRawBodyBytes);
  return out;
}

absl::Status MapProviderError(ProviderKind kind, absl::string_view provider_name, int http_status,
                              const ProviderError& error, const Headers& headers, absl::Time now) {
  (void)kind;  // the body shapes differ, the mapping does not (see the header)
  const int effective = EffectiveHttpStatus(http_status, error);
  absl::StatusCode code = CodeForHttpStatus(effective);
  std::string reason;
  if (IsContextLengthError(error, effective)) {
    code = absl::StatusCode::kOutOfRange;
    reason = std::string(kReasonContextLength);
  } else if (IsContentPolicyError(error, effective)) {
    code = absl::StatusCode::kFailedPrecondition;
    reason = std::string(kReasonContentPolicy);
  } else if (error.info_reason == "API_KEY_INVALID") {
    // Gemini answers a bad key with 400 INVALID_ARGUMENT.
    code = absl::StatusCode::kUnauthenticated;
    reason = error.info_reason;
  } else {
    reason = ProviderReason(error, effective);
  }
  const std::string where = http_status >= 300 ? absl::StrCat("upstream HTTP ", http_status)
                                               : std::string("upstream error in the answer");
  std::string message =
      absl::StrCat(provider_name, ": ", where, " (", ProviderReason(error, effective), ")");
  if (!error.message.empty()) {
    absl::StrAppend(&message, ": ", Truncate(RedactSecrets(error.message), kMaxMessageBytes));
  }
  absl::Status status = WithReason(absl::Status(code, RedactSecrets(message)), reason);

  absl::optional<absl::Duration> retry_after;
  if (code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kUnavailable) {
    retry_after = RetryAfterHeaderOnly(headers, now);
    if (!retry_after) retry_after = error.retry_delay;
    if (!retry_after && effective == 429) retry_after = RetryAfterFromHeaders(headers, now);
  }
  if (retry_after) status = WithRetryAfter(std::move(status), *retry_after);
  return status;
}

absl::Status MapHttpError(ProviderKind kind, absl::string_view provider_name, int http_status,
                          const Headers& headers, absl::string_view body, absl::Time now) {
  return MapProviderError(kind, provider_name, http_status, ParseProviderError(body), headers, now);
}

absl::Status MapTransportFailure(absl::string_view provider_name, TransportFailure failure,
                                 absl::string_view detail) {
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  absl::string_view reason;
  absl::string_view what;
  switch (failure) {
    case TransportFailure::kConnect:
      reason = kReasonConnectFailed;
      what = "cannot connect";
      break;
    case TransportFailure::kTls:
      reason = "tls_failed";
      what = "TLS failure";
      break;
    case TransportFailure::kReset:
      reason = kReasonConnectionReset;
      what = "connection reset";
      break;
    case TransportFailure::kIdleTimeout:
      reason = kReasonStreamStalled;
      what = "upstream stalled (idle timeout)";
      break;
    case TransportFailure::kDeadline:
      code = absl::StatusCode::kDeadlineExceeded;
      reason = kReasonDeadline;
      what = "deadline exceeded";
      break;
    case TransportFailure::kCancelled:
      code = absl::StatusCode::kCancelled;
      reason = kReasonCancelled;
      what = "cancelled";
      break;
  }
  std::string message = absl::StrCat(provider_name, ": ", what);
  if (!detail.empty()) absl::StrAppend(&message, ": ", Truncate(detail, kMaxMessageBytes));
  return WithReason(absl::Status(code, RedactSecrets(message)), reason);
}

absl::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (auto seconds = ParseNumberSeconds(value)) return seconds;
  // RFC 9110 section 5.6.7: IMF-fixdate, then the obsolete RFC 850 and asctime forms.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",
      "%A, %d-%b-%y %H:%M:%S GMT",
      "%a %b %e %H:%M:%S %Y",
  };
  for (const char* format : kFormats) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(format, value, absl::UTCTimeZone(), &t, &err)) {
      return SecondsToDuration(std::max(0.0, absl::ToDoubleSeconds(t - now)));
    }
  }
  return absl::nullopt;
}

absl::optional<absl::Duration> RetryAfterFromHeaders(const Headers& headers, absl::Time now) {
  if (auto d = RetryAfterHeaderOnly(headers, now)) return d;
  struct ResetPair {
    absl::string_view reset;
    absl::string_view remaining;
  };
  static constexpr ResetPair kPairs[] = {
      {"x-ratelimit-reset-requests", "x-ratelimit-remaining-requests"},
      {"x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"},
      {"anthropic-ratelimit-requests-reset", "anthropic-ratelimit-requests-remaining"},
      {"anthropic-ratelimit-tokens-reset", "anthropic-ratelimit-tokens-remaining"},
      {"anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-input-tokens-remaining"},
      {"anthropic-ratelimit-output-tokens-reset", "anthropic-ratelimit-output-tokens-remaining"},
  };
  absl::optional<absl::Duration> longest_exhausted;
  absl::optional<absl::Duration> longest_any;
  for (const auto& pair : kPairs) {
    auto reset = FindHeader(headers, pair.reset);
    if (!reset) continue;
    auto delay = ParseResetValue(*reset, now);
    if (!delay) continue;
    if (!longest_any || *delay > *longest_any) longest_any = delay;
    auto remaining = FindHeader(headers, pair.remaining);
    if (remaining && absl::StripAsciiWhitespace(*remaining) == "0") {
      if (!longest_exhausted || *delay > *longest_exhausted) longest_exhausted = delay;
    }
  }
  return longest_exhausted ? longest_exhausted : longest_any;
}

std::string RedactSecrets(absl::string_view text, const std::vector<std::string>& secrets) {
  std::string s(text);
  for (const std::string& secret : secrets) {
    if (secret.size() >= 4) absl::StrReplaceAll({{secret, kRedacted}}, &s);
  }
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    bool replaced = false;
    for (const KeyShape& shape : kKeyShapes) {
      const absl::string_view rest = absl::string_view(s).substr(i);
      const bool prefix_match = shape.case_insensitive
                                    ? absl::StartsWithIgnoreCase(rest, shape.prefix)
                                    : absl::StartsWith(rest, shape.prefix);
      if (!prefix_match) continue;
      // "task-..." must not look like "sk-...": a key starts a word.
      if (!shape.keep_prefix && i > 0 && IsKeyChar(s[i - 1])) continue;
      size_t j = i + shape.prefix.size();
      while (j < s.size() && (shape.token_chars ? IsTokenChar(s[j]) : IsKeyChar(s[j]))) ++j;
      if (j - i - shape.prefix.size() < shape.min_tail) continue;
      if (shape.keep_prefix) out.append(s, i, shape.prefix.size());
      out.append(kRedacted.data(), kRedacted.size());
      i = j;
      replaced = true;
      break;
    }
    if (!replaced) out.push_back(s[i++]);
  }
  return out;
}

absl::Status RedactStatus(const absl::Status& status, const std::vector<std::string>& secrets) {
  if (status.ok()) return status;
  absl::Status out(status.code(), RedactSecrets(status.message(), secrets));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace tiermesh::cloud
