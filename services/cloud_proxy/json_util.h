// Small non-throwing accessors over nlohmann::json for reading provider
// answers. Provider JSON is untrusted: every accessor checks the type and
// returns a default (or an error) instead of throwing, so that a wrong type in
// an upstream body becomes a clear Status rather than an exception.
//
//   absl::StatusOr<nlohmann::json> j = ParseJson(body, "openai response");
//   std::string text = StringOr(*j, "content");        // "" unless a string
//   absl::optional<int64_t> n = IntField(*j, "prompt_tokens");
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_JSON_UTIL_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_JSON_UTIL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"

namespace tiermesh::cloud {

using Json = nlohmann::json;

// Parses `text`; INVALID_ARGUMENT naming `what` when it is not JSON. Invalid
// UTF-8 inside is replaced with U+FFFD first (the parser would reject it).
[[nodiscard]] absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what);

// obj[key] when obj is an object holding key, else nullptr.
const Json* Field(const Json& obj, absl::string_view key);
// The string at obj[key], or "" (missing, null or another type).
std::string StringOr(const Json& obj, absl::string_view key, absl::string_view fallback = "");
// A non-negative integer at obj[key] (integral floats accepted), else nullopt.
absl::optional<int64_t> IntField(const Json& obj, absl::string_view key);

// Serializes for a request body; invalid UTF-8 in strings is replaced with
// U+FFFD instead of throwing.
std::string DumpJson(const Json& value);

// Rounds a proto float (e.g. 0.7f, stored as 0.699999988) to the shortest
// decimal that reads back as the same float, so request bodies carry 0.7.
double FloatToJsonNumber(float value);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_JSON_UTIL_H_
