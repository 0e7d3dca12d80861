// Caller authentication: the API key from the call's `authorization:
// Bearer <key>` metadata is hashed (sha256) and compared in constant time
// against every configured key hash; a match gives the caller's tenant and
// user tier. The policy never holds a key itself, only its hash.
//
//   absl::StatusOr<Caller> caller = Authenticate(policy.callers, authorization_or_nullopt);
//   if (!caller.ok()) return ToGrpcStatus(caller.status());     // UNAUTHENTICATED
//   caller->tenant; caller->user_tier;
//
// No key at all: the anonymous caller when allow_anonymous is set, else
// UNAUTHENTICATED. A key that is present but malformed or unknown is always
// UNAUTHENTICATED, even with allow_anonymous: a mistyped key must not quietly
// downgrade a paying caller to the anonymous tier. Errors never contain the
// key.
#ifndef TIERMESH_SERVICES_ROUTER_AUTH_H_
#define TIERMESH_SERVICES_ROUTER_AUTH_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

#include "services/router/policy.h"
#include "services/router/types.h"

namespace tiermesh::router {

struct Caller {
  std::string tenant;
  UserTier user_tier = UserTier::kFree;
  // The key's label from the policy ("" for anonymous): for logs, never the key.
  std::string key_name;
  bool anonymous = false;
};

// The key in an `authorization` metadata value: "Bearer <key>" (scheme
// case-insensitive, one space or more). UNAUTHENTICATED when it is not that
// shape or the key is empty, longer than 1024 bytes or not printable ASCII.
[[nodiscard]] absl::StatusOr<std::string> ParseBearerToken(absl::string_view authorization);

// sha256 of `key`.
std::array<uint8_t, 32> HashApiKey(absl::string_view key);

// Equal without an early exit, so that timing does not tell how much matched.
bool ConstantTimeEqual(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b);

// `authorization`: the metadata value, nullopt when the call had none.
[[nodiscard]] absl::StatusOr<Caller> Authenticate(
    const CallerPolicy& callers, const absl::optional<absl::string_view>& authorization);

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_AUTH_H_
