#include "services/router/auth.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/crypto/sha256.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::router {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::StatusIs;

CallerKey Key(const std::string& name, const std::string& secret, const std::string& tenant,
              UserTier tier) {
  CallerKey k;
  k.name = name;
  k.sha256 = HashApiKey(secret);
  k.tenant = tenant;
  k.user_tier = tier;
  return k;
}

CallerPolicy Callers(bool allow_anonymous) {
  CallerPolicy c;
  c.allow_anonymous = allow_anonymous;
  c.anonymous.tenant = "anon";
  c.anonymous.user_tier = UserTier::kFree;
  c.keys.push_back(Key("alice", "sk-alice-1", "acme", UserTier::kPaid));
  c.keys.push_back(Key("bob", "sk-bob-2", "globex", UserTier::kByok));
  return c;
}

TEST(AuthTest, HashIsSha256) {
  // FIPS 180-2 test vector.
  EXPECT_EQ(crypto::Sha256::Hex(HashApiKey("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuthTest, ConstantTimeEqual) {
  std::array<uint8_t, 32> a{};
  std::array<uint8_t, 32> b{};
  EXPECT_TRUE(ConstantTimeEqual(a, b));
  b[31] = 1;
  EXPECT_FALSE(ConstantTimeEqual(a, b));
  b[31] = 0;
  b[0] = 0x80;
  EXPECT_FALSE(ConstantTimeEqual(a, b));
}

TEST(AuthTest, ParseBearerToken) {
  struct Case {
    const char* header;
    bool ok;
    const char* key;
  };
  const Case cases[] = {
      {"Bearer sk-1", true, "sk-1"},
      {"bearer sk-1", true, "sk-1"},
      {"BEARER   sk-1  ", true, "sk-1"},
      {"Bearer", false, ""},
      {"Bearer ", false, ""},
      {"Bearer    ", false, ""},
      {"Basic dXNlcjpwYXNz", false, ""},
      {"sk-1", false, ""},
      {"Bearersk-1", false, ""},
      {"Bearer sk 1", false, ""},
      {"Bearer sk-\x01", false, ""},
      {"Bearer sk-\xc3\xa9", false, ""},
      {"", false, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    absl::StatusOr<std::string> key = ParseBearerToken(c.header);
    EXPECT_EQ(key.ok(), c.ok) << key.status();
    if (c.ok && key.ok()) {
      EXPECT_EQ(*key, c.key);
    }
    if (!key.ok()) {
      EXPECT_EQ(key.status().code(), absl::StatusCode::kUnauthenticated);
    }
  }
  EXPECT_FALSE(ParseBearerToken("Bearer " + std::string(1025, 'k')).ok());
}

TEST(AuthTest, Table) {
  struct Case {
    const char* name;
    bool allow_anonymous;
    absl::optional<absl::string_view> header;
    bool ok;
    const char* tenant;
    UserTier tier;
    bool anonymous;
    const char* error;
  };
  const Case cases[] = {
      {"known key", false, "Bearer sk-alice-1", true, "acme", UserTier::kPaid, false, ""},
      {"second key", false, "Bearer sk-bob-2", true, "globex", UserTier::kByok, false, ""},
      {"unknown key", false, "Bearer sk-alice-2", false, "", UserTier::kFree, false,
       "unknown API key"},
      {"missing key", false, absl::nullopt, false, "", UserTier::kFree, false, "no API key"},
      {"missing key, anonymous allowed", true, absl::nullopt, true, "anon", UserTier::kFree, true,
       ""},
      // A wrong key is never quietly downgraded to anonymous.
      {"unknown key, anonymous allowed", true, "Bearer sk-nope", false, "", UserTier::kFree, false,
       "unknown API key"},
      {"malformed header, anonymous allowed", true, "Token sk-alice-1", false, "", UserTier::kFree,
       false, "Bearer <api key>"},
      {"known key, anonymous allowed", true, "Bearer sk-alice-1", true, "acme", UserTier::kPaid,
       false, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Caller> caller = Authenticate(Callers(c.allow_anonymous), c.header);
    ASSERT_EQ(caller.ok(), c.ok) << caller.status();
    if (caller.ok()) {
      EXPECT_EQ(caller->tenant, c.tenant);
      EXPECT_EQ(caller->user_tier, c.tier);
      EXPECT_EQ(caller->anonymous, c.anonymous);
    } else {
      EXPECT_THAT(caller, StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr(c.error)));
      // The key never appears in an error.
      EXPECT_THAT(std::string(caller.status().message()), Not(HasSubstr("sk-")));
    }
  }
}

TEST(AuthTest, KeyNameIsReportedNotTheKey) {
  absl::StatusOr<Caller> caller =
      Authenticate(Callers(false), absl::string_view("Bearer sk-bob-2"));
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->key_name, "bob");
}

}  // namespace
}  // namespace tiermesh::router
