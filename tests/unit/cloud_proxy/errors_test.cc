#include "services/cloud_proxy/errors.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::StatusIs;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);  // 2023-11-14T22:13:20Z

struct MapCase {
  std::string name;
  ProviderKind kind;
  int http_status;
  Headers headers;
  std::string body;
  absl::StatusCode code;
  std::string reason;
  absl::optional<absl::Duration> retry_after;
  std::string message_part;
};

class MapHttpErrorTest : public ::testing::TestWithParam<MapCase> {};

TEST_P(MapHttpErrorTest, Maps) {
  const MapCase& c = GetParam();
  absl::Status s = MapHttpError(c.kind, "prov", c.http_status, c.headers, c.body, kNow);
  EXPECT_THAT(s, StatusIs(c.code, HasSubstr(c.message_part)));
  EXPECT_THAT(std::string(s.message()), HasSubstr("prov: "));
  EXPECT_EQ(ErrorReason(s), c.reason);
  EXPECT_EQ(GetRetryAfter(s), c.retry_after);
}

constexpr ProviderKind kOpenAi = ProviderKind::kOpenAiCompatible;
constexpr ProviderKind kAnthropic = ProviderKind::kAnthropic;
constexpr ProviderKind kGemini = ProviderKind::kGemini;
using absl::StatusCode;

std::string OpenAiError(const std::string& message, const std::string& type,
                        const std::string& code) {
  return R"({"error":{"message":")" + message + R"(","type":")" + type +
         R"(","param":null,"code":)" + (code.empty() ? std::string("null") : "\"" + code + "\"") +
         "}}";
}

std::string AnthropicError(const std::string& type, const std::string& message) {
  return R"({"type":"error","error":{"type":")" + type + R"(","message":")" + message +
         R"("},"request_id":"req_011"})";
}

std::string GeminiError(int code, const std::string& status, const std::string& message,
                        const std::string& details = "") {
  return "{\"error\":{\"code\":" + std::to_string(code) + ",\"message\":\"" + message +
         "\",\"status\":\"" + status + "\"" + (details.empty() ? "" : ",\"details\":" + details) +
         "}}";
}

INSTANTIATE_TEST_SUITE_P(
    Table, MapHttpErrorTest,
    ::testing::Values(
        // OpenAI-compatible.
        MapCase{"openai_429_retry_after_seconds",
                kOpenAi,
                429,
                {{"Retry-After", "7"}},
                OpenAiError("Rate limit reached", "requests", "rate_limit_exceeded"),
                StatusCode::kResourceExhausted,
                "rate_limit_exceeded",
                absl::Seconds(7),
                "Rate limit reached"},
        MapCase{"openai_429_retry_after_ms_wins",
                kOpenAi,
                429,
                {{"retry-after-ms", "1500"}, {"retry-after", "9"}},
                OpenAiError("slow down", "requests", "rate_limit_exceeded"),
                StatusCode::kResourceExhausted,
                "rate_limit_exceeded",
                absl::Milliseconds(1500),
                "slow down"},
        MapCase{"openai_429_reset_headers",
                kOpenAi,
                429,
                {{"x-ratelimit-remaining-requests", "10"},
                 {"x-ratelimit-reset-requests", "1s"},
                 {"x-ratelimit-remaining-tokens", "0"},
                 {"x-ratelimit-reset-tokens", "6m0s"}},
                OpenAiError("tokens per min", "tokens", "rate_limit_exceeded"),
                StatusCode::kResourceExhausted,
                "rate_limit_exceeded",
                absl::Minutes(6),
                "tokens per min"},
        MapCase{"openai_429_http_date",
                kOpenAi,
                429,
                {{"Retry-After", "Tue, 14 Nov 2023 22:13:50 GMT"}},
                OpenAiError("x", "requests", ""),
                StatusCode::kResourceExhausted,
                "requests",
                absl::Seconds(30),
                "(requests)"},
        MapCase{"openai_insufficient_quota",
                kOpenAi,
                429,
                {},
                OpenAiError("You exceeded your current quota", "insufficient_quota",
                            "insufficient_quota"),
                StatusCode::kResourceExhausted,
                "insufficient_quota",
                absl::nullopt,
                "quota"},
        MapCase{"openai_401",
                kOpenAi,
                401,
                {},
                OpenAiError("Incorrect API key provided: sk-abcdefghijklmnop.",
                            "invalid_request_error", "invalid_api_key"),
                StatusCode::kUnauthenticated,
                "invalid_api_key",
                absl::nullopt,
                "Incorrect API key provided: [REDACTED]."},
        MapCase{"openai_403",
                kOpenAi,
                403,
                {},
                OpenAiError("region", "permission_error", ""),
                StatusCode::kPermissionDenied,
                "permission_error",
                absl::nullopt,
                "region"},
        MapCase{"openai_404_model",
                kOpenAi,
                404,
                {},
                OpenAiError("The model does not exist", "invalid_request_error", "model_not_found"),
                StatusCode::kNotFound,
                "model_not_found",
                absl::nullopt,
                "does not exist"},
        MapCase{"openai_context_length_code",
                kOpenAi,
                400,
                {},
                OpenAiError("This model's maximum context length is 8192 tokens.",
                            "invalid_request_error", "context_length_exceeded"),
                StatusCode::kOutOfRange,
                "context_length_exceeded",
                absl::nullopt,
                "maximum context length"},
        MapCase{"compat_context_length_message_only",
                kOpenAi,
                400,
                {},
                R"({"error":{"message":"Input is too long for requested model.","code":400}})",
                StatusCode::kOutOfRange,
                "context_length_exceeded",
                absl::nullopt,
                "too long"},
        MapCase{"openai_content_filter",
                kOpenAi,
                400,
                {},
                OpenAiError("The response was filtered", "invalid_request_error", "content_filter"),
                StatusCode::kFailedPrecondition,
                "content_policy",
                absl::nullopt,
                "filtered"},
        MapCase{"openai_content_policy_violation",
                kOpenAi,
                400,
                {},
                OpenAiError("Your request was rejected by our safety system",
                            "invalid_request_error", "content_policy_violation"),
                StatusCode::kFailedPrecondition,
                "content_policy",
                absl::nullopt,
                "safety"},
        MapCase{"openai_400_plain",
                kOpenAi,
                400,
                {},
                OpenAiError("temperature too high", "invalid_request_error", ""),
                StatusCode::kInvalidArgument,
                "invalid_request_error",
                absl::nullopt,
                "temperature"},
        MapCase{"openai_500",
                kOpenAi,
                500,
                {},
                OpenAiError("oops", "server_error", ""),
                StatusCode::kUnavailable,
                "server_error",
                absl::nullopt,
                "HTTP 500"},
        MapCase{"openai_503_with_retry_after",
                kOpenAi,
                503,
                {{"retry-after", "2"}},
                OpenAiError("busy", "server_error", ""),
                StatusCode::kUnavailable,
                "server_error",
                absl::Seconds(2),
                "busy"},
        MapCase{"html_502_from_a_proxy",
                kOpenAi,
                502,
                {},
                "<html><body>502 Bad Gateway</body></html>",
                StatusCode::kUnavailable,
                "http_502",
                absl::nullopt,
                "502 Bad Gateway"},
        MapCase{"empty_body_504",
                kOpenAi,
                504,
                {},
                "",
                StatusCode::kUnavailable,
                "http_504",
                absl::nullopt,
                "HTTP 504"},
        MapCase{"teapot_unknown",
                kOpenAi,
                418,
                {},
                "",
                StatusCode::kUnknown,
                "http_418",
                absl::nullopt,
                "HTTP 418"},
        MapCase{"openrouter_402",
                kOpenAi,
                402,
                {},
                R"({"error":{"code":402,"message":"Insufficient credits"}})",
                StatusCode::kPermissionDenied,
                "http_402",
                absl::nullopt,
                "credits"},
        // Anthropic.
        MapCase{"anthropic_429",
                kAnthropic,
                429,
                {{"retry-after", "12"}, {"anthropic-ratelimit-requests-remaining", "0"}},
                AnthropicError("rate_limit_error", "Number of request tokens has exceeded"),
                StatusCode::kResourceExhausted,
                "rate_limit_error",
                absl::Seconds(12),
                "exceeded"},
        MapCase{"anthropic_429_reset_rfc3339",
                kAnthropic,
                429,
                {{"anthropic-ratelimit-tokens-remaining", "0"},
                 {"anthropic-ratelimit-tokens-reset", "2023-11-14T22:14:20Z"},
                 {"anthropic-ratelimit-requests-remaining", "5"},
                 {"anthropic-ratelimit-requests-reset", "2023-11-14T22:18:20Z"}},
                AnthropicError("rate_limit_error", "tokens"),
                StatusCode::kResourceExhausted,
                "rate_limit_error",
                absl::Seconds(60),
                "tokens"},
        MapCase{"anthropic_529_overloaded",
                kAnthropic,
                529,
                {},
                AnthropicError("overloaded_error", "Overloaded"),
                StatusCode::kUnavailable,
                "overloaded_error",
                absl::nullopt,
                "Overloaded"},
        MapCase{"anthropic_prompt_too_long",
                kAnthropic,
                400,
                {},
                AnthropicError("invalid_request_error",
                               "prompt is too long: 212345 tokens > 200000 maximum"),
                StatusCode::kOutOfRange,
                "context_length_exceeded",
                absl::nullopt,
                "prompt is too long"},
        MapCase{"anthropic_401",
                kAnthropic,
                401,
                {},
                AnthropicError("authentication_error", "invalid x-api-key"),
                StatusCode::kUnauthenticated,
                "authentication_error",
                absl::nullopt,
                "x-api-key"},
        MapCase{"anthropic_403",
                kAnthropic,
                403,
                {},
                AnthropicError("permission_error", "not allowed"),
                StatusCode::kPermissionDenied,
                "permission_error",
                absl::nullopt,
                "not allowed"},
        MapCase{"anthropic_413",
                kAnthropic,
                413,
                {},
                AnthropicError("request_too_large", "Request exceeds the maximum size"),
                StatusCode::kOutOfRange,
                "request_too_large",
                absl::nullopt,
                "maximum size"},
        MapCase{"anthropic_500",
                kAnthropic,
                500,
                {},
                AnthropicError("api_error", "Internal"),
                StatusCode::kUnavailable,
                "api_error",
                absl::nullopt,
                "Internal"},
        // Gemini.
        MapCase{"gemini_429_retry_info",
                kGemini,
                429,
                {},
                GeminiError(
                    429, "RESOURCE_EXHAUSTED", "You exceeded your current quota",
                    R"([{"@type":"type.googleapis.com/google.rpc.QuotaFailure"},)"
                    R"({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"46s"}])"),
                StatusCode::kResourceExhausted,
                "RESOURCE_EXHAUSTED",
                absl::Seconds(46),
                "quota"},
        MapCase{
            "gemini_header_beats_retry_info",
            kGemini,
            429,
            {{"Retry-After", "3"}},
            GeminiError(
                429, "RESOURCE_EXHAUSTED", "quota",
                R"([{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"46.5s"}])"),
            StatusCode::kResourceExhausted,
            "RESOURCE_EXHAUSTED",
            absl::Seconds(3),
            "quota"},
        MapCase{"gemini_context",
                kGemini,
                400,
                {},
                GeminiError(400, "INVALID_ARGUMENT",
                            "The input token count (1200000) exceeds the maximum number of tokens "
                            "allowed (1048576)."),
                StatusCode::kOutOfRange,
                "context_length_exceeded",
                absl::nullopt,
                "1048576"},
        MapCase{
            "gemini_400_key_invalid",
            kGemini,
            400,
            {},
            GeminiError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                        R"([{"@type":"type.googleapis.com/google.rpc.ErrorInfo",)"
                        R"("reason":"API_KEY_INVALID","domain":"googleapis.com"}])"),
            StatusCode::kUnauthenticated,
            "API_KEY_INVALID",
            absl::nullopt,
            "API key not valid"},
        MapCase{"gemini_400_plain",
                kGemini,
                400,
                {},
                GeminiError(400, "INVALID_ARGUMENT", "Invalid value at contents[0]"),
                StatusCode::kInvalidArgument,
                "INVALID_ARGUMENT",
                absl::nullopt,
                "contents[0]"},
        MapCase{"gemini_403",
                kGemini,
                403,
                {},
                GeminiError(403, "PERMISSION_DENIED", "denied"),
                StatusCode::kPermissionDenied,
                "PERMISSION_DENIED",
                absl::nullopt,
                "denied"},
        MapCase{"gemini_503",
                kGemini,
                503,
                {},
                GeminiError(503, "UNAVAILABLE", "The model is overloaded."),
                StatusCode::kUnavailable,
                "UNAVAILABLE",
                absl::nullopt,
                "overloaded"},
        MapCase{"gemini_array_body",
                kGemini,
                500,
                {},
                "[" + GeminiError(500, "INTERNAL", "An internal error has occurred.") + "]",
                StatusCode::kUnavailable,
                "INTERNAL",
                absl::nullopt,
                "internal error"}),
    [](const auto& param_info) { return param_info.param.name; });

// Errors that arrive inside a 200 answer or stream take the status their type stands for.
struct InStreamCase {
  std::string name;
  std::string body;
  absl::StatusCode code;
  std::string reason;
};

class InStreamErrorTest : public ::testing::TestWithParam<InStreamCase> {};

TEST_P(InStreamErrorTest, Maps) {
  const InStreamCase& c = GetParam();
  absl::Status s = MapHttpError(kAnthropic, "prov", 200, {}, c.body, kNow);
  EXPECT_EQ(s.code(), c.code) << s;
  EXPECT_EQ(ErrorReason(s), c.reason);
  EXPECT_THAT(std::string(s.message()), HasSubstr("upstream error in the answer"));
}

INSTANTIATE_TEST_SUITE_P(
    Table, InStreamErrorTest,
    ::testing::Values(
        InStreamCase{"anthropic_overloaded", AnthropicError("overloaded_error", "Overloaded"),
                     StatusCode::kUnavailable, "overloaded_error"},
        InStreamCase{"anthropic_rate_limit", AnthropicError("rate_limit_error", "slow"),
                     StatusCode::kResourceExhausted, "rate_limit_error"},
        InStreamCase{"anthropic_api_error", AnthropicError("api_error", "boom"),
                     StatusCode::kUnavailable, "api_error"},
        InStreamCase{"anthropic_invalid", AnthropicError("invalid_request_error", "bad"),
                     StatusCode::kInvalidArgument, "invalid_request_error"},
        InStreamCase{"gemini_status", GeminiError(429, "RESOURCE_EXHAUSTED", "q"),
                     StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
        InStreamCase{"openrouter_numeric_code",
                     R"({"error":{"code":502,"message":"Provider returned error"}})",
                     StatusCode::kUnavailable, "http_502"},
        InStreamCase{"openai_server_error",
                     OpenAiError("The server had an error", "server_error", ""),
                     StatusCode::kUnavailable, "server_error"},
        InStreamCase{"unknown_type_is_server_fault", AnthropicError("brand_new_error", "?"),
                     StatusCode::kUnavailable, "brand_new_error"}),
    [](const auto& param_info) { return param_info.param.name; });

struct RetryAfterCase {
  std::string value;
  absl::optional<absl::Duration> want;
};

TEST(ParseRetryAfter, Table) {
  const std::vector<RetryAfterCase> cases = {
      {"0", absl::ZeroDuration()},
      {"120", absl::Seconds(120)},
      {" 5 ", absl::Seconds(5)},
      {"1.5", absl::Milliseconds(1500)},
      {"Tue, 14 Nov 2023 22:14:20 GMT", absl::Seconds(60)},     // IMF-fixdate
      {"Tuesday, 14-Nov-23 22:14:20 GMT", absl::Seconds(60)},   // RFC 850
      {"Tue Nov 14 22:14:20 2023", absl::Seconds(60)},          // asctime
      {"Tue, 14 Nov 2023 22:00:00 GMT", absl::ZeroDuration()},  // in the past
      {"-1", absl::nullopt},
      {"soon", absl::nullopt},
      {"", absl::nullopt},
      {"99999999999", absl::nullopt},  // absurd: ignored, not overflowed
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ParseRetryAfter(c.value, kNow), c.want) << "\"" << c.value << "\"";
  }
}

TEST(RetryAfterFromHeaders, PrefersExhaustedLimitsAndTakesTheLongest) {
  // No limit says remaining 0: the longest reset is used.
  EXPECT_EQ(RetryAfterFromHeaders(
                {{"x-ratelimit-reset-requests", "2s"}, {"x-ratelimit-reset-tokens", "12ms"}}, kNow),
            absl::Seconds(2));
  // The exhausted one wins even when shorter.
  EXPECT_EQ(RetryAfterFromHeaders({{"x-ratelimit-reset-requests", "2s"},
                                   {"x-ratelimit-reset-tokens", "12ms"},
                                   {"x-ratelimit-remaining-tokens", "0"}},
                                  kNow),
            absl::Milliseconds(12));
  EXPECT_EQ(RetryAfterFromHeaders({{"x-ratelimit-reset-tokens", "garbage"}}, kNow), absl::nullopt);
  EXPECT_EQ(RetryAfterFromHeaders({}, kNow), absl::nullopt);
}

TEST(RetryAfterPayload, RoundTripsAndRoundsUp) {
  absl::Status s = WithRetryAfter(absl::ResourceExhaustedError("x"), absl::Microseconds(1500));
  EXPECT_EQ(GetRetryAfter(s), absl::Milliseconds(2));
  EXPECT_EQ(GetRetryAfter(absl::ResourceExhaustedError("x")), absl::nullopt);
  EXPECT_TRUE(WithRetryAfter(absl::OkStatus(), absl::Seconds(1)).ok());
}

TEST(MapTransportFailure, Table) {
  struct Case {
    TransportFailure failure;
    absl::StatusCode code;
    absl::string_view reason;
  };
  for (const Case& c :
       {Case{TransportFailure::kConnect, StatusCode::kUnavailable, "connect_failed"},
        Case{TransportFailure::kTls, StatusCode::kUnavailable, "tls_failed"},
        Case{TransportFailure::kReset, StatusCode::kUnavailable, "connection_reset"},
        Case{TransportFailure::kIdleTimeout, StatusCode::kUnavailable, "stream_stalled"},
        Case{TransportFailure::kDeadline, StatusCode::kDeadlineExceeded, "deadline_exceeded"},
        Case{TransportFailure::kCancelled, StatusCode::kCancelled, "cancelled"}}) {
    absl::Status s = MapTransportFailure("prov", c.failure, "detail Bearer abc.def");
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_EQ(ErrorReason(s), c.reason);
    EXPECT_THAT(std::string(s.message()), HasSubstr("prov: "));
    EXPECT_THAT(std::string(s.message()), Not(HasSubstr("abc.def")));
  }
}

TEST(RedactSecrets, Table) {
  struct Case {
    std::string in;
    std::vector<std::string> secrets;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"key sk-proj-abcdef123456 bad", {}, "key [REDACTED] bad"},
      {"sk-ant-api03-xyzxyzxyz", {}, "[REDACTED]"},
      {"AIzaSyA1234567890abcdef here", {}, "[REDACTED] here"},
      {"Authorization: Bearer abc.def/ghi=", {}, "Authorization: Bearer [REDACTED]"},
      {"https://x/y?key=AIzaSecretSecret&alt=sse", {}, "https://x/y?key=[REDACTED]&alt=sse"},
      {"task-manager is fine", {}, "task-manager is fine"},
      {"sk-short", {}, "sk-short"},
      {"the canary CANARY-1234 leaked", {"CANARY-1234"}, "the canary [REDACTED] leaked"},
      {"tiny abc", {"abc"}, "tiny abc"},  // secrets under 4 bytes are not blanked
  };
  for (const auto& c : cases) EXPECT_EQ(RedactSecrets(c.in, c.secrets), c.want) << c.in;
}

TEST(RedactStatus, KeepsCodeAndPayloads) {
  absl::Status s = WithRetryAfter(
      WithReason(absl::UnavailableError("failed with key s3cr3t-value"), "x"), absl::Seconds(1));
  absl::Status r = RedactStatus(s, {"s3cr3t-value"});
  EXPECT_EQ(r.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.message(), "failed with key [REDACTED]");
  EXPECT_EQ(ErrorReason(r), "x");
  EXPECT_EQ(GetRetryAfter(r), absl::Seconds(1));
}

TEST(ParseProviderError, ShapesAndGarbage) {
  ProviderError e = ParseProviderError(R"({"error":"plain string"})");
  EXPECT_EQ(e.message, "plain string");
  e = ParseProviderError(R"({"message":"top level"})");
  EXPECT_EQ(e.message, "top level");
  e = ParseProviderError("\xFF\xFE not json");
  EXPECT_THAT(e.message, HasSubstr("not json"));
  e = ParseProviderError(std::string(10000, 'x'));
  EXPECT_LT(e.message.size(), 300u);
  e = ParseProviderError(R"({"error":{"code":"rate_limit_exceeded","type":7}})");
  EXPECT_EQ(e.code, "rate_limit_exceeded");
  EXPECT_EQ(e.type, "");
}

}  // namespace
}  // namespace tiermesh::cloud
