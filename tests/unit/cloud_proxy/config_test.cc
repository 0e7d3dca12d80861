#include "services/cloud_proxy/config.h"

#include <cstdlib>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::StatusIs;

constexpr char kFull[] = R"yaml(
providers:
  - name: openrouter
    type: openai_compatible
    base_url: https://openrouter.ai/api/v1/
    api_key: ${OPENROUTER_API_KEY}
    headers:
      HTTP-Referer: https://example.org
      X-Title: ${APP_TITLE}
    limits: {requests_per_minute: 60, tokens_per_minute: 100000}
    max_concurrency: 8
    connect_timeout: 2s
    idle_timeout: 15s
    stream_include_usage: false
    models:
      - name: llama-8b-cloud
        upstream: meta-llama/llama-3.1-8b-instruct
        context_window: 131072
        max_output_tokens: 4096
        supports_top_k: true
        max_tokens_field: max_completion_tokens
        price: {input_usd_per_mtok: 0.05, output_usd_per_mtok: "0.08", cached_input_usd_per_mtok: 0.01}
  - name: anthropic
    type: anthropic
    api_key_file: /run/secrets/anthropic
    anthropic_version: "2023-06-01"
    models:
      - name: claude
        upstream: claude-sonnet-4-5
        supports_tools: false
        price: {input_usd_per_mtok: 3, output_usd_per_mtok: 15}
  - name: gemini
    type: gemini
    models:
      - name: gemini-flash
        upstream: models/gemini-2.5-flash
        price: {input_usd_per_mtok: "0.30", output_usd_per_mtok: "2.50"}
)yaml";

TEST(ParseCloudConfig, FullExample) {
  ASSERT_OK_AND_ASSIGN(CloudConfig config, ParseCloudConfig(kFull));
  ASSERT_EQ(config.providers.size(), 3u);
  const ProviderConfig& o = config.providers[0];
  EXPECT_EQ(o.name, "openrouter");
  EXPECT_EQ(o.kind, ProviderKind::kOpenAiCompatible);
  EXPECT_EQ(o.base_url, "https://openrouter.ai/api/v1");  // trailing '/' dropped
  EXPECT_EQ(o.key.kind, KeySource::Kind::kEnv);
  EXPECT_EQ(o.key.ref, "OPENROUTER_API_KEY");
  EXPECT_EQ(o.headers,
            (Headers{{"HTTP-Referer", "https://example.org"}, {"X-Title", "${APP_TITLE}"}}));
  EXPECT_EQ(o.limits.requests_per_minute, 60);
  EXPECT_EQ(o.limits.tokens_per_minute, 100000);
  EXPECT_EQ(o.max_concurrency, 8);
  EXPECT_EQ(o.connect_timeout, absl::Seconds(2));
  EXPECT_EQ(o.idle_timeout, absl::Seconds(15));
  EXPECT_FALSE(o.stream_include_usage);
  ASSERT_EQ(o.models.size(), 1u);
  const ModelConfig& m = o.models[0];
  EXPECT_EQ(m.name, "llama-8b-cloud");
  EXPECT_EQ(m.upstream, "meta-llama/llama-3.1-8b-instruct");
  EXPECT_EQ(m.context_window, 131072);
  EXPECT_EQ(m.max_output_tokens, 4096);
  EXPECT_TRUE(m.supports_tools);
  EXPECT_TRUE(m.supports_top_k);
  EXPECT_EQ(m.max_tokens_field, "max_completion_tokens");
  EXPECT_EQ(m.price.input_nano_per_mtok, 50'000'000);
  EXPECT_EQ(m.price.output_nano_per_mtok, 80'000'000);
  EXPECT_EQ(m.price.cached_input_nano_per_mtok, 10'000'000);

  const ProviderConfig& a = config.providers[1];
  EXPECT_EQ(a.kind, ProviderKind::kAnthropic);
  EXPECT_EQ(a.base_url, "https://api.anthropic.com");
  EXPECT_EQ(a.key.kind, KeySource::Kind::kFile);
  EXPECT_EQ(a.key.ref, "/run/secrets/anthropic");
  EXPECT_FALSE(a.models[0].supports_tools);
  EXPECT_EQ(a.models[0].price.input_nano_per_mtok, 3'000'000'000);
  EXPECT_FALSE(a.models[0].price.cached_input_nano_per_mtok.has_value());

  const ProviderConfig& g = config.providers[2];
  EXPECT_EQ(g.base_url, "https://generativelanguage.googleapis.com");
  EXPECT_EQ(g.key.kind, KeySource::Kind::kNone);
  EXPECT_EQ(g.models[0].upstream, "gemini-2.5-flash");  // "models/" prefix dropped
}

TEST(ParseCloudConfig, EmptyMeansOffline) {
  for (const char* text : {"", "providers: []", "providers:", "# nothing\n"}) {
    ASSERT_OK_AND_ASSIGN(CloudConfig config, ParseCloudConfig(text));
    EXPECT_TRUE(config.providers.empty()) << text;
  }
}

struct BadCase {
  std::string name;
  std::string yaml;
  std::string message_part;
  friend void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }
};

class ParseCloudConfigBadTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseCloudConfigBadTest, RejectsWithAClearMessage) {
  absl::StatusOr<CloudConfig> got = ParseCloudConfig(GetParam().yaml);
  EXPECT_THAT(got,
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().message_part)));
}

std::string One(const std::string& provider_extra, const std::string& model_extra = "",
                const std::string& type = "openai_compatible") {
  return "providers:\n  - name: p\n    type: " + type + "\n" + provider_extra +
         "    models:\n      - name: m\n        price: {input_usd_per_mtok: 1, "
         "output_usd_per_mtok: 2}\n" +
         model_extra;
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseCloudConfigBadTest,
    ::testing::Values(
        BadCase{"not_yaml", "providers: [", "line 1"},
        BadCase{"top_level_typo", "provider: []", "did you mean 'providers'"},
        BadCase{"providers_not_list", "providers: {a: 1}", "expected a list"},
        BadCase{"literal_key", One("    api_key: sk-live-1234567890abcdef\n"),
                "must name an environment variable"},
        BadCase{"both_keys", One("    api_key: ${A}\n    api_key_file: /x\n"), "not both"},
        BadCase{"bad_type", One("", "", "azure"), "'azure' is not one of"},
        BadCase{"no_type", "providers:\n  - name: p\n    models: []\n",
                "missing required key 'providers[0].type'"},
        BadCase{"bad_name", "providers:\n  - name: Bad Name\n    type: gemini\n",
                "is not a provider name"},
        BadCase{"unknown_provider_key", One("    timeout: 3\n"),
                "unknown key 'providers[0].timeout'"},
        BadCase{"unknown_model_key", One("", "        prise: 1\n"), "did you mean 'price'"},
        BadCase{"bad_base_url", One("    base_url: ftp://x\n"), "http:// or https://"},
        BadCase{"base_url_query", One("    base_url: https://x/v1?key=abc\n"), "query"},
        BadCase{"auth_header", One("    headers:\n      Authorization: x\n"), "set by the proxy"},
        BadCase{"bad_limit", One("    limits: {requests_per_minute: -1}\n"), "out of range"},
        BadCase{"limit_not_int", One("    limits: {tokens_per_minute: lots}\n"), "integer"},
        BadCase{"bad_bool", One("    stream_include_usage: maybe\n"), "true or false"},
        BadCase{"anthropic_version_elsewhere", One("    anthropic_version: x\n"),
                "anthropic providers only"},
        BadCase{"no_models", "providers:\n  - name: p\n    type: gemini\n    models: []\n",
                "must not be empty"},
        BadCase{"no_price",
                "providers:\n  - name: p\n    type: gemini\n    models:\n      - name: m\n",
                "price is required"},
        BadCase{"bad_price",
                "providers:\n  - name: p\n    type: gemini\n    models:\n      - name: m\n"
                "        price: {input_usd_per_mtok: 1e-6, output_usd_per_mtok: 1}\n",
                "1e-6"},
        BadCase{"gemini_bad_upstream",
                "providers:\n  - name: p\n    type: gemini\n    models:\n      - name: m\n"
                "        upstream: a/b\n        price: {input_usd_per_mtok: 1, "
                "output_usd_per_mtok: 1}\n",
                "gemini upstream"},
        BadCase{"bad_max_tokens_field", One("", "        max_tokens_field: tokens\n"),
                "max_tokens_field"},
        BadCase{"duplicate_provider",
                "providers:\n"
                "  - {name: p, type: gemini, models: [{name: a, price: {input_usd_per_mtok: 1, "
                "output_usd_per_mtok: 1}}]}\n"
                "  - {name: p, type: gemini, models: [{name: b, price: {input_usd_per_mtok: 1, "
                "output_usd_per_mtok: 1}}]}\n",
                "duplicate provider name"},
        BadCase{"duplicate_model",
                "providers:\n"
                "  - {name: p, type: gemini, models: [{name: a, price: {input_usd_per_mtok: 1, "
                "output_usd_per_mtok: 1}}]}\n"
                "  - {name: q, type: gemini, models: [{name: a, price: {input_usd_per_mtok: 1, "
                "output_usd_per_mtok: 1}}]}\n",
                "used twice"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(ParseCloudConfig, LiteralKeyIsNeverEchoed) {
  absl::StatusOr<CloudConfig> got =
      ParseCloudConfig(One("    api_key: sk-live-1234567890abcdef\n"));
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(std::string(got.status().message()), Not(HasSubstr("1234567890")));
}

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars](absl::string_view name) -> absl::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return absl::nullopt;
    return it->second;
  };
}

FileReader FakeFiles(std::map<std::string, std::string> files) {
  return [files](const std::string& path) -> absl::StatusOr<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return absl::NotFoundError("no such file");
    return it->second;
  };
}

TEST(ResolveKey, Sources) {
  const EnvLookup env = FakeEnv({{"KEY", "  sk-abc \n"}, {"EMPTY", ""}, {"SPACE", "a b"}});
  const FileReader files = FakeFiles({{"/k", "file-key\n"}, {"/empty", "\n"}});
  EXPECT_EQ(ResolveKey({KeySource::Kind::kEnv, "KEY"}, env, files).value(), "sk-abc");
  EXPECT_EQ(ResolveKey({KeySource::Kind::kFile, "/k"}, env, files).value(), "file-key");
  EXPECT_THAT(ResolveKey({}, env, files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no api key")));
  EXPECT_THAT(ResolveKey({KeySource::Kind::kEnv, "MISSING"}, env, files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("MISSING")));
  EXPECT_THAT(ResolveKey({KeySource::Kind::kEnv, "EMPTY"}, env, files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("EMPTY")));
  EXPECT_THAT(ResolveKey({KeySource::Kind::kFile, "/nope"}, env, files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nope")));
  EXPECT_THAT(ResolveKey({KeySource::Kind::kFile, "/empty"}, env, files),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("empty")));
  absl::StatusOr<std::string> spaced = ResolveKey({KeySource::Kind::kEnv, "SPACE"}, env, files);
  EXPECT_THAT(spaced, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("whitespace")));
  EXPECT_THAT(std::string(spaced.status().message()), Not(HasSubstr("a b")));
}

TEST(ResolveHeaders, ExpandsVariables) {
  const EnvLookup env = FakeEnv({{"TITLE", "tiermesh"}, {"NL", "a\nb"}});
  ASSERT_OK_AND_ASSIGN(Headers h,
                       ResolveHeaders({{"X-Title", "app ${TITLE}!"}, {"A", "plain"}}, env));
  EXPECT_EQ(h, (Headers{{"X-Title", "app tiermesh!"}, {"A", "plain"}}));
  EXPECT_THAT(ResolveHeaders({{"X", "${NOPE}"}}, env),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NOPE")));
  EXPECT_THAT(ResolveHeaders({{"X", "${TITLE"}}, env),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unterminated")));
  EXPECT_THAT(ResolveHeaders({{"X", "${NL}"}}, env),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line break")));
}

}  // namespace
}  // namespace tiermesh::cloud

namespace tiermesh::cloud {
namespace {

TEST(ParseCloudConfig, TheShippedExampleIsValid) {
  const char* source_dir = std::getenv("TIERMESH_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr) << "run through ctest (TIERMESH_SOURCE_DIR)";
  const std::string path =
      std::string(source_dir) + "/services/cloud_proxy/cloud-proxy.example.yaml";
  ASSERT_OK_AND_ASSIGN(std::string text, ReadFileToString(path));
  ASSERT_OK_AND_ASSIGN(CloudConfig config, ParseCloudConfig(text, path));
  ASSERT_EQ(config.providers.size(), 3u);
  EXPECT_EQ(config.providers[0].models[0].name, "cloud-cheap");
  EXPECT_EQ(config.providers[1].models[0].name, "cloud-premium");
  EXPECT_EQ(config.providers[1].key.kind, KeySource::Kind::kFile);
}

}  // namespace
}  // namespace tiermesh::cloud
