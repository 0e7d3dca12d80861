// Keeps secrets (API keys, bearer tokens, passwords) out of logs, traces and
// error messages. The Logger applies both functions to every line it writes;
// other code calls them before putting upstream text (a provider's error body,
// a URL with ?key=...) anywhere an operator can read it.
//
//   IsSensitiveKey("x-tiermesh-provider-key")   // true
//   IsSensitiveKey("max_tokens")                // false
//   RedactSecrets("401 from upstream: Authorization: Bearer abc.def")
//       // -> "401 from upstream: Authorization: Bearer [REDACTED]"
//   RedactSecrets("GET /v1/models?key=AIzaSyA...&alt=sse")
//       // -> "GET /v1/models?key=[REDACTED]&alt=sse"
#ifndef TIERMESH_SERVICES_COMMON_LOGGING_REDACT_H_
#define TIERMESH_SERVICES_COMMON_LOGGING_REDACT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tiermesh::logging {

// What replaces a secret.
inline constexpr absl::string_view kRedacted = "[REDACTED]";

// True when a field, header or parameter with this name holds a secret. The
// name is split into words (at '_', '-', '.', ' ' and lower-to-upper case
// changes) and is sensitive when a word is one of key(s), token, auth,
// authorization, bearer, cookie(s), credential(s), or when it contains
// "secret", "password", "passwd" or "apikey" anywhere. Words, not
// substrings, so that "max_tokens" and "monkey" stay readable while
// "api_key", "x-api-key", "apiKey", "access_token" and
// "x-tiermesh-provider-key" do not. Case-insensitive.
[[nodiscard]] bool IsSensitiveKey(absl::string_view key);

// Returns `text` with secrets replaced by kRedacted:
//  - the credential after "Bearer " or "Basic " (any case);
//  - well-known API key shapes at a word start, keeping the prefix so that an
//    operator still sees which provider it was: "sk-..." (OpenAI, Anthropic,
//    OpenRouter), "gsk_..." (Groq), "AIza..." (Google), "xai-...", "hf_...",
//    "r8_...", "ghp_..." / "github_pat_..."; the rest must be >= 16 key
//    characters, which keeps "sk-learn" readable;
//  - the value of a pair whose name IsSensitiveKey: `name=value` (query
//    strings, env dumps), `"name": "value"` (JSON) and `Header-Name: value`
//    (a name with a '-', or "authorization"/"cookie"). A plain `name: value`
//    is left alone so that prose such as "bad api_key: check the env" stays
//    readable; YAML keys that hold a known key shape are still caught above.
// The scan is linear and never fails; text without secrets is returned as is.
[[nodiscard]] std::string RedactSecrets(absl::string_view text);

}  // namespace tiermesh::logging

#endif  // TIERMESH_SERVICES_COMMON_LOGGING_REDACT_H_
