#include "services/common/config/env.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::config {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

struct Case {
  const char* text;
  const char* want;   // expected expansion, or nullptr for an error
  const char* error;  // substring of the expected error
};

TEST(InterpolateEnv, Table) {
  const EnvLookup env = MapEnv({{"HOST", "example.com"},
                                {"PORT", "9000"},
                                {"EMPTY", ""},
                                {"WITH_BRACE", "a}b"},
                                {"LOOKS_LIKE_REF", "${HOST}"}});
  const Case cases[] = {
      {"", "", nullptr},
      {"no variables", "no variables", nullptr},
      {"${HOST}", "example.com", nullptr},
      {"http://${HOST}:${PORT}/v1", "http://example.com:9000/v1", nullptr},
      {"${PORT}${PORT}", "90009000", nullptr},
      // Defaults: ":-" also replaces an empty value, "-" only an unset one.
      {"${MISSING:-8080}", "8080", nullptr},
      {"${EMPTY:-fallback}", "fallback", nullptr},
      {"${EMPTY-fallback}", "", nullptr},
      {"${MISSING-fallback}", "fallback", nullptr},
      {"${MISSING:-}", "", nullptr},
      {"${PORT:-1}", "9000", nullptr},
      {"${MISSING:-a b:c/d}", "a b:c/d", nullptr},
      {"${EMPTY}", "", nullptr},
      // Values are inserted literally, never expanded again.
      {"${LOOKS_LIKE_REF}", "${HOST}", nullptr},
      {"${WITH_BRACE}", "a}b", nullptr},
      // Escapes and things that are not references.
      {"$${HOST}", "${HOST}", nullptr},
      {"cost: $5", "cost: $5", nullptr},
      {"$HOST", "$HOST", nullptr},
      {"$$", "$$", nullptr},
      {"trailing $", "trailing $", nullptr},
      {"$${", "${", nullptr},
      // Errors.
      {"${MISSING}", nullptr, "environment variable 'MISSING' is not set"},
      {"x ${HOST", nullptr, "unterminated '${' at character 3"},
      {"${}", nullptr, "invalid variable name"},
      {"${1ABC}", nullptr, "invalid variable name"},
      {"${HO ST}", nullptr, "unsupported form"},
      {"${HOST:?required}", nullptr, "unsupported form"},
      {"${MISSING:-${HOST}}", nullptr, "nested '${' in the default of variable 'MISSING'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::string> got = InterpolateEnv(c.text, env);
    if (c.want != nullptr) {
      ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
      EXPECT_EQ(*got, c.want) << c.text;
    } else {
      EXPECT_THAT(got, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error))) << c.text;
    }
  }
}

TEST(InterpolateEnv, ErrorsNeverShowValues) {
  const EnvLookup env = MapEnv({{"API_KEY", "sk-super-secret"}});
  absl::StatusOr<std::string> got = InterpolateEnv("${API_KEY} ${OTHER}", env);
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("'OTHER'"));
  EXPECT_THAT(std::string(got.status().message()), ::testing::Not(HasSubstr("secret")));
}

TEST(ProcessEnv, ReadsTheRealEnvironment) {
  ASSERT_EQ(::setenv("TIERMESH_ENV_TEST_VAR", "hello", 1), 0);
  const EnvLookup env = ProcessEnv();
  EXPECT_EQ(env("TIERMESH_ENV_TEST_VAR"), absl::optional<std::string>("hello"));
  ::unsetenv("TIERMESH_ENV_TEST_VAR");
  EXPECT_EQ(env("TIERMESH_ENV_TEST_VAR"), absl::nullopt);
}

}  // namespace
}  // namespace tiermesh::config
