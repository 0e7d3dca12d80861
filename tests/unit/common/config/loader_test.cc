#include "services/common/config/loader.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/config/schema.h"
#include "services/common/status/status.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::config {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::tiermesh::testing::StatusIs;

// A fresh directory under the test temp dir, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "/tiermesh_config_XXXXXX";
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { EXPECT_EQ(std::system(("rm -rf '" + path_ + "'").c_str()), 0); }
  std::string Write(const std::string& name, const std::string& content) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Provider {
  std::string name;
  std::string api_key;
  std::string base_url;
  int port = 0;
};
struct ProxyConfig {
  std::vector<Provider> providers;
};

absl::Status Decode(const Node& node, Provider* out) {
  ObjectReader r(node);
  r.Required("name", &out->name);
  r.Optional("api_key", &out->api_key);
  r.Optional("base_url", &out->base_url);
  r.Optional("port", &out->port);
  return r.Finish();
}

absl::StatusOr<ProxyConfig> ParseProxyConfig(const YAML::Node& root) {
  ProxyConfig c;
  ObjectReader r(root);
  r.Required("providers", &c.providers);
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  return c;
}

TEST(ReadFileToString, ReadsAndReportsClearErrors) {
  TempDir dir;
  const std::string file = dir.Write("a.yaml", std::string("x: 1\n\0y", 8));
  ASSERT_OK_AND_ASSIGN(const std::string content, ReadFileToString(file));
  EXPECT_EQ(content, std::string("x: 1\n\0y", 8));

  EXPECT_THAT(ReadFileToString(dir.path() + "/missing.yaml"),
              StatusIs(absl::StatusCode::kNotFound,
                       dir.path() + "/missing.yaml: cannot open: No such file or directory"));
  EXPECT_THAT(ReadFileToString(dir.path()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is a directory")));
}

TEST(ReadFileToString, UnreadableFile) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read any file";
  TempDir dir;
  const std::string file = dir.Write("secret.yaml", "x: 1\n");
  ASSERT_EQ(::chmod(file.c_str(), 0), 0);
  EXPECT_THAT(ReadFileToString(file),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("cannot open")));
}

TEST(ParseYaml, MalformedYamlHasLineAndColumn) {
  struct Case {
    const char* text;
    const char* error;
  };
  const Case cases[] = {
      {"a: 1\nb: [1, 2\n", "cfg.yaml: line 3, column 1: end of sequence flow not found"},
      {"a: 1\n  b: 2\n", "cfg.yaml: line 2, column 4: illegal map value"},
      {"a: b: c\n", "cfg.yaml: line 1, column 5: illegal map value"},
      {"{a: 1\n", "cfg.yaml: line 2, column 1: end of map flow not found"},
      {"a: *nope\n", "cfg.yaml: line 1, column 4: the referenced anchor is not defined"},
      {"a: 1\n---\nb: 2\n",
       "cfg.yaml: expected one YAML document, found 2 (the second starts at line 3, column 1)"},
      {"- a\nb: 1\n",
       "cfg.yaml: expected one YAML document, found 2 (the second starts at line 2, column 1)"},
      // yaml-cpp's LoadAll loops forever (allocating) on these; found by config_fuzz.
      {", a\n", "cfg.yaml: line 1, column 1: unexpected ','"},
      {"# comment\n, Load with: x\nmode: learned\n", "cfg.yaml: line 2, column 1: unexpected ','"},
      {"---\n  ,\n", "cfg.yaml: line 2, column 3: unexpected ','"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseYaml(c.text, "cfg.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.error)))
        << c.text;
  }
  // yaml-cpp stops deep nesting (a stack overflow otherwise) with the message "bad file".
  for (const std::string& deep :
       {std::string(5000, '[') + std::string(5000, ']'), std::string(5000, '{')}) {
    EXPECT_THAT(ParseYaml(deep, "cfg.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("levels deep")))
        << deep.substr(0, 20);
  }
  ASSERT_OK_AND_ASSIGN(const YAML::Node empty, ParseYaml("", "cfg.yaml"));
  EXPECT_TRUE(empty.IsNull());
  ASSERT_OK_AND_ASSIGN(const YAML::Node comment, ParseYaml("# only a comment\n", "cfg.yaml"));
  EXPECT_TRUE(comment.IsNull());
}

TEST(LoadConfigFile, InterpolatesEnvironmentInValues) {
  TempDir dir;
  const std::string file = dir.Write("proxy.yaml", R"(
providers:
  - name: groq            # ${NOT_EXPANDED_IN_COMMENTS}
    api_key: ${GROQ_API_KEY}
    base_url: ${GROQ_URL:-https://api.groq.com/openai/v1}
    port: ${PORT:-443}
  - name: literal
    api_key: "$${NOT_A_VAR}"
)");
  ASSERT_OK_AND_ASSIGN(
      const ProxyConfig c,
      LoadConfigFile(file,
                     MapEnv({{"GROQ_API_KEY", "gsk_value: with # yaml chars"}, {"PORT", "8443"}}),
                     ParseProxyConfig));
  ASSERT_EQ(c.providers.size(), 2u);
  // Values are expanded after parsing, so YAML syntax inside them is inert.
  EXPECT_EQ(c.providers[0].api_key, "gsk_value: with # yaml chars");
  EXPECT_EQ(c.providers[0].base_url, "https://api.groq.com/openai/v1");
  EXPECT_EQ(c.providers[0].port, 8443);
  EXPECT_EQ(c.providers[1].api_key, "${NOT_A_VAR}");
}

TEST(LoadConfigFile, UnsetVariableNamesPathAndVariable) {
  TempDir dir;
  const std::string file = dir.Write("proxy.yaml",
                                     "providers:\n  - name: a\n  - name: b\n"
                                     "    api_key: ${OPENROUTER_API_KEY}\n");
  EXPECT_THAT(
      LoadConfigFile(file, MapEnv({}), ParseProxyConfig),
      StatusIs(absl::StatusCode::kInvalidArgument,
               file + ": providers[1].api_key: environment variable "
                      "'OPENROUTER_API_KEY' is not set (write ${OPENROUTER_API_KEY:-default} "
                      "to give a default) (line 4, column 14)"));
  EXPECT_THAT(LoadConfigFile(dir.path() + "/nope.yaml", MapEnv({}), ParseProxyConfig),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.yaml")));
}

TEST(LoadConfigText, AliasesAreExpandedOnce) {
  // The env value looks like a reference; expanding the shared node twice
  // would expand it again.
  const char* text = R"(
base: &b {name: x, api_key: "${KEY}"}
providers: [*b, *b]
)";
  auto parse = [](const YAML::Node& root) -> absl::StatusOr<ProxyConfig> {
    ProxyConfig c;
    ObjectReader r(root);
    r.Ignore("base");
    r.Required("providers", &c.providers);
    TIERMESH_RETURN_IF_ERROR(r.Finish());
    return c;
  };
  ASSERT_OK_AND_ASSIGN(const ProxyConfig c,
                       LoadConfigText(text, "t.yaml", MapEnv({{"KEY", "$${X}"}}), parse));
  ASSERT_EQ(c.providers.size(), 2u);
  EXPECT_EQ(c.providers[0].api_key, "$${X}");
  EXPECT_EQ(c.providers[1].api_key, "$${X}");
}

TEST(LoadConfigText, ExceptionsFromParseFunctionsStopHere) {
  // A parse function that used yaml-cpp directly and hit a bad conversion.
  auto parse = [](const YAML::Node& root) -> absl::StatusOr<int> { return root["n"].as<int>(); };
  EXPECT_THAT(
      LoadConfigText("n: abc\n", "t.yaml", MapEnv({}), parse),
      StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("t.yaml: line 1, column 4:")));
}

TEST(LoadConfigText, ErrorsFromParseFunctionsGetTheSourcePrefix) {
  auto parse = [](const YAML::Node&) -> absl::StatusOr<int> {
    return absl::FailedPreconditionError("no tiers");
  };
  EXPECT_THAT(LoadConfigText("{}", "router.yaml", MapEnv({}), parse),
              StatusIs(absl::StatusCode::kFailedPrecondition, "router.yaml: no tiers"));
}

}  // namespace
}  // namespace tiermesh::config
