// Policy hot reload: a valid change is applied and becomes the version in the
// metrics; a bad file is rejected with a clear error and a log line, and the
// old policy keeps serving; the FileWatcher feeds changes to the reloader.
#include "services/router/policy_reload.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

#include "services/common/config/file_watcher.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/router/test_policy.h"
#include "tests/unit/router/test_util.h"

namespace tiermesh::router {
namespace {

using ::testing::HasSubstr;
using testing::MetricValue;

class PolicyReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const Policy>> initial =
        ParsePolicyUpdate(testing::kTestPolicyYaml, "router.yaml", config::MapEnv({}));
    ASSERT_OK(initial.status());
    initial_ = *initial;
    absl::StatusOr<std::unique_ptr<RouterMetrics>> metrics = RouterMetrics::Create(registry_);
    ASSERT_OK(metrics.status());
    metrics_ = *std::move(metrics);
    metrics_->SetPolicyVersion(initial_->version);
    logging::LoggerOptions options;
    options.service = "router";
    options.sink = sink_;
    reloader_ = std::make_unique<PolicyReloader>(
        "router.yaml", config::MapEnv({{"MAX_TOKENS", "300"}}), initial_,
        [this](std::shared_ptr<const Policy> p) { applied_.push_back(std::move(p)); },
        metrics_.get(), logging::Logger(options));
  }

  std::shared_ptr<const Policy> initial_;
  prometheus::Registry registry_;
  std::unique_ptr<RouterMetrics> metrics_;
  std::shared_ptr<logging::MemorySink> sink_ = std::make_shared<logging::MemorySink>();
  std::vector<std::shared_ptr<const Policy>> applied_;
  std::unique_ptr<PolicyReloader> reloader_;
};

TEST_F(PolicyReloadTest, ValidChangeIsAppliedAndItsVersionExported) {
  const std::string changed = absl::StrReplaceAll(
      testing::kTestPolicyYaml,
      {{"defaults: {max_tokens: 256}", "defaults:\n  max_tokens: ${MAX_TOKENS}"}});
  ASSERT_NE(changed, testing::kTestPolicyYaml);
  ASSERT_OK(reloader_->OnFileChanged(changed));
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0]->defaults.max_tokens, 300);
  EXPECT_NE(applied_[0]->version, initial_->version);
  EXPECT_EQ(reloader_->current(), applied_[0]);
  EXPECT_EQ(
      MetricValue(registry_, "tiermesh_router_policy_info", {{"version", applied_[0]->version}}),
      1);
  // The old version's series is gone, not left at 1.
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_policy_info", {{"version", initial_->version}}),
            -1);
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_policy_reloads_total", {{"result", "ok"}}), 1);
  EXPECT_THAT(sink_->Lines(), ::testing::Contains(HasSubstr("policy reloaded")));
}

TEST_F(PolicyReloadTest, StartupOnlySettingsAreAppliedAfterARestart) {
  ASSERT_OK(reloader_->OnFileChanged(
      absl::StrCat(testing::kTestPolicyYaml, "escalation: {history_ttl: 5m}\n")));
  ASSERT_EQ(applied_.size(), 1u);  // the rest of the policy applies now
  EXPECT_THAT(sink_->Lines(), ::testing::Contains(HasSubstr("takes effect after a restart")));
}

TEST_F(PolicyReloadTest, SameContentIsNotReapplied) {
  ASSERT_OK(reloader_->OnFileChanged(testing::kTestPolicyYaml));
  EXPECT_TRUE(applied_.empty());
}

TEST_F(PolicyReloadTest, BadFilesAreRejectedAndTheOldPolicyKeepsServing) {
  struct Case {
    const char* name;
    std::string text;
    const char* error;  // a part of the message that says what is wrong
  };
  const std::vector<Case> cases = {
      {"unknown key", absl::StrReplaceAll(testing::kTestPolicyYaml, {{"defaults:", "defaultz:"}}),
       "unknown key 'defaultz'"},
      {"not YAML", "tiers: [unclosed", "router.yaml"},
      {"rule to an unknown tier",
       absl::StrReplaceAll(testing::kTestPolicyYaml,
                           {{"tier: local_tool\n", "tier: local_toool\n"}}),
       "local_toool"},
      {"empty file", "", "router.yaml"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const absl::Status status = reloader_->OnFileChanged(c.text);
    EXPECT_FALSE(status.ok());
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.error));
    EXPECT_EQ(reloader_->current(), initial_);
  }
  EXPECT_TRUE(applied_.empty());
  EXPECT_EQ(
      MetricValue(registry_, "tiermesh_router_policy_reloads_total", {{"result", "rejected"}}),
      static_cast<double>(cases.size()));
  EXPECT_EQ(MetricValue(registry_, "tiermesh_router_policy_info", {{"version", initial_->version}}),
            1);
  const std::vector<std::string> lines = sink_->Lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_THAT(lines[0], HasSubstr("policy reload rejected"));
  EXPECT_THAT(lines[0], HasSubstr("unknown key"));
  EXPECT_THAT(lines[0], HasSubstr("\"error\""));
}

TEST_F(PolicyReloadTest, FileWatcherFeedsTheReloader) {
  char dir_template[] = "/tmp/tiermesh-reload-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string path = std::string(dir_template) + "/router.yaml";
  auto write = [&](const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  };
  write(testing::kTestPolicyYaml);
  config::FileWatcher::Options options;
  options.start_thread = false;
  options.initial_content = std::string(testing::kTestPolicyYaml);
  absl::StatusOr<std::unique_ptr<config::FileWatcher>> watcher = config::FileWatcher::Start(
      path, [this](const std::string& text) { (void)reloader_->OnFileChanged(text); }, options);
  ASSERT_OK(watcher.status());

  write(absl::StrReplaceAll(testing::kTestPolicyYaml, {{"defaults:", "defaultz:"}}));
  ASSERT_OK((*watcher)->PollNow().status());
  EXPECT_TRUE(applied_.empty());
  write(absl::StrReplaceAll(testing::kTestPolicyYaml, {{"max_tokens: 256", "max_tokens: 128"}}));
  ASSERT_OK((*watcher)->PollNow().status());
  ASSERT_EQ(applied_.size(), 1u);
  EXPECT_EQ(applied_[0]->defaults.max_tokens, 128);
  std::remove(path.c_str());
  rmdir(dir_template);
}

}  // namespace
}  // namespace tiermesh::router
