// Maps what goes wrong upstream (HTTP error answers, error events inside a
// stream, transport failures) to one absl::Status each, keeping the
// provider's own reason (tiermesh::WithReason) and the retry delay it asked
// for. Pure and table-driven.
//
//   absl::Status s = MapHttpError(ProviderKind::kAnthropic, "anthropic", 429,
//                                 {{"retry-after", "7"}}, body, absl::Now());
//   s.code();              // RESOURCE_EXHAUSTED
//   ErrorReason(s);        // "rate_limit_error"
//   GetRetryAfter(s);      // 7s
//
// The mapping (after the provider's body is read):
//   context-length errors (any status)     -> OUT_OF_RANGE, reason "context_length_exceeded"
//   content-policy errors                  -> FAILED_PRECONDITION, reason "content_policy"
//   400, 422                               -> INVALID_ARGUMENT
//   401, Gemini ErrorInfo API_KEY_INVALID  -> UNAUTHENTICATED
//   402 (billing), 403                     -> PERMISSION_DENIED
//   404                                    -> NOT_FOUND
//   408, 409, 5xx, 529 (overloaded)        -> UNAVAILABLE
//   413 (request too large)                -> OUT_OF_RANGE
//   429                                    -> RESOURCE_EXHAUSTED (+ retry-after when known)
//   499                                    -> CANCELLED
//   anything else                          -> UNKNOWN
// An error inside a 200 stream is first given the HTTP status its type stands
// for (Anthropic "overloaded_error" -> 529, Gemini "RESOURCE_EXHAUSTED" ->
// 429, OpenAI-compatible numeric codes as is) and then mapped the same way.
// Transport failures: connect/TLS/reset/stall -> UNAVAILABLE, the call's own
// deadline -> DEADLINE_EXCEEDED, cancellation -> CANCELLED.
//
// Messages never contain secrets: known keys are removed and anything shaped
// like a provider key (sk-..., AIza..., gsk_..., "Bearer ...") is masked.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_ERRORS_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_ERRORS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

#include "services/cloud_proxy/http_types.h"
#include "services/cloud_proxy/provider_kind.h"

namespace tiermesh::cloud {

// Reasons set by the cloud-proxy itself (provider reasons pass through as the
// provider spells them: "rate_limit_error", "overloaded_error", ...).
inline constexpr absl::string_view kReasonContextLength = "context_length_exceeded";
inline constexpr absl::string_view kReasonContentPolicy = "content_policy";
inline constexpr absl::string_view kReasonStreamCut = "stream_cut";
inline constexpr absl::string_view kReasonStreamStalled = "stream_stalled";
inline constexpr absl::string_view kReasonMalformed = "malformed_response";
inline constexpr absl::string_view kReasonUpstreamFinishError = "upstream_finish_error";
inline constexpr absl::string_view kReasonConnectFailed = "connect_failed";
inline constexpr absl::string_view kReasonConnectionReset = "connection_reset";
inline constexpr absl::string_view kReasonDeadline = "deadline_exceeded";
inline constexpr absl::string_view kReasonCancelled = "cancelled";
inline constexpr absl::string_view kReasonClientRateLimited = "client_rate_limited";

// Status payload holding the retry delay in whole milliseconds (decimal text).
// The gRPC layer copies it to the "retry-after-ms" trailing metadata.
inline constexpr absl::string_view kRetryAfterPayload = "tiermesh.retry_after_ms";

// `status` with a retry delay attached (rounded up to whole ms, >= 0).
[[nodiscard]] absl::Status WithRetryAfter(absl::Status status, absl::Duration delay);
// The delay attached by WithRetryAfter, if any.
absl::optional<absl::Duration> GetRetryAfter(const absl::Status& status);

// The error object of a provider's error body or in-stream error event.
struct ProviderError {
  std::string type;      // OpenAI / Anthropic error.type
  std::string code;      // OpenAI error.code when it is a string
  std::string status;    // Gemini error.status ("RESOURCE_EXHAUSTED")
  std::string message;   // error.message (or the raw body when not JSON)
  int numeric_code = 0;  // error.code when numeric (Gemini, OpenRouter: an HTTP status)
  absl::optional<absl::Duration> retry_delay;  // Gemini google.rpc.RetryInfo
  std::string info_reason;  // Gemini google.rpc.ErrorInfo reason ("API_KEY_INVALID")
};

// Reads `body` ({"error": {...}}, Anthropic's {"type":"error","error":{...}},
// a Gemini [{"error": ...}] array, or anything else). Never fails: a body that
// is not a known shape gives its first bytes as the message.
ProviderError ParseProviderError(absl::string_view body);

// Maps an upstream error. `http_status` is the answer's status; pass 200 for
// an error object found inside a successful answer or stream.
[[nodiscard]] absl::Status MapProviderError(ProviderKind kind, absl::string_view provider_name,
                                            int http_status, const ProviderError& error,
                                            const Headers& headers, absl::Time now);

// ParseProviderError + MapProviderError.
[[nodiscard]] absl::Status MapHttpError(ProviderKind kind, absl::string_view provider_name,
                                        int http_status, const Headers& headers,
                                        absl::string_view body, absl::Time now);

enum class TransportFailure {
  kConnect,      // DNS, refused, unreachable
  kTls,          // handshake or certificate failure
  kReset,        // the connection broke (before or during the body)
  kIdleTimeout,  // no byte for the configured idle time (a stalled stream)
  kDeadline,     // the call's own deadline passed
  kCancelled,    // the caller cancelled
};

[[nodiscard]] absl::Status MapTransportFailure(absl::string_view provider_name,
                                               TransportFailure failure, absl::string_view detail);

// Retry-After value: delay-seconds ("120", also "1.5") or an HTTP-date in any
// of the three RFC 9110 forms. Dates in the past give 0. nullopt: unreadable.
absl::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

// The delay a 429/503 answer asks for, from (first match wins): retry-after-ms,
// retry-after, then the rate-limit reset headers (OpenAI-style
// x-ratelimit-reset-{requests,tokens} durations like "6m0s"; Anthropic
// anthropic-ratelimit-*-reset RFC 3339 times), preferring the limits whose
// "remaining" is 0 and taking the longest.
absl::optional<absl::Duration> RetryAfterFromHeaders(const Headers& headers, absl::Time now);

// `text` with every `secrets` entry (of 4+ bytes) and every key-shaped token
// replaced by "[REDACTED]".
std::string RedactSecrets(absl::string_view text, const std::vector<std::string>& secrets = {});

// Same code, payloads kept, message redacted.
[[nodiscard]] absl::Status RedactStatus(const absl::Status& status,
                                        const std::vector<std::string>& secrets);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_ERRORS_H_
