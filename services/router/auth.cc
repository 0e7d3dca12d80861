#include "services/router/auth.h"

#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

#include "services/common/crypto/sha256.h"

namespace tiermesh::router {
namespace {

constexpr size_t kMaxKeyBytes = 1024;

absl::Status Unauthenticated(absl::string_view why) { return absl::UnauthenticatedError(why); }

}  // namespace

absl::StatusOr<std::string> ParseBearerToken(absl::string_view authorization) {
  constexpr absl::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme) ||
      authorization[kScheme.size()] != ' ') {
    return Unauthenticated("the authorization metadata must be 'Bearer <api key>'");
  }
  absl::string_view key = absl::StripLeadingAsciiWhitespace(authorization.substr(kScheme.size()));
  key = absl::StripTrailingAsciiWhitespace(key);
  if (key.empty()) return Unauthenticated("the authorization metadata has an empty API key");
  if (key.size() > kMaxKeyBytes) return Unauthenticated("the API key is too long");
  for (char c : key) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Unauthenticated("the API key contains a space or a non-ASCII character");
    }
  }
  return std::string(key);
}

std::array<uint8_t, 32> HashApiKey(absl::string_view key) {
  crypto::Sha256 hasher;
  hasher.Update(std::string_view(key.data(), key.size()));
  return hasher.Finish();
}

bool ConstantTimeEqual(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff = static_cast<uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

absl::StatusOr<Caller> Authenticate(const CallerPolicy& callers,
                                    const absl::optional<absl::string_view>& authorization) {
  if (!authorization.has_value()) {
    if (!callers.allow_anonymous) {
      return Unauthenticated("no API key: send 'authorization: Bearer <api key>'");
    }
    Caller anonymous;
    anonymous.tenant = callers.anonymous.tenant;
    anonymous.user_tier = callers.anonymous.user_tier;
    anonymous.anonymous = true;
    return anonymous;
  }
  absl::StatusOr<std::string> key = ParseBearerToken(*authorization);
  if (!key.ok()) return key.status();
  const std::array<uint8_t, 32> digest = HashApiKey(*key);
  // Compare against every key, matched or not, so the time taken does not
  // depend on which (if any) matched.
  const CallerKey* match = nullptr;
  for (const CallerKey& candidate : callers.keys) {
    const bool equal = ConstantTimeEqual(digest, candidate.sha256);
    if (equal && match == nullptr) match = &candidate;
  }
  if (match == nullptr) return Unauthenticated("unknown API key");
  Caller caller;
  caller.tenant = match->tenant;
  caller.user_tier = match->user_tier;
  caller.key_name = match->name;
  return caller;
}

}  // namespace tiermesh::router
