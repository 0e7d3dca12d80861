// The example policy shipped for the whole mesh (deploy/config/router.yaml)
// must load, and must route the way its comments say.
#include <string>

#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/config/env.h"
#include "services/common/config/loader.h"
#include "services/common/status/status_matchers.h"
#include "services/router/auth.h"
#include "services/router/budget.h"
#include "services/router/decide.h"
#include "services/router/policy.h"

namespace tiermesh::router {
namespace {

using ::testing::ElementsAre;

const std::string kPath = std::string(TIERMESH_SOURCE_DIR) + "/deploy/config/router.yaml";

absl::StatusOr<Policy> Load(const config::EnvLookup& env) {
  return config::LoadConfigFile(kPath, env, ParsePolicy);
}

TEST(ExamplePolicyTest, LoadsWithLocalDefaults) {
  ASSERT_OK_AND_ASSIGN(Policy p, Load(config::MapEnv({})));
  EXPECT_EQ(p.name, "local-mesh");
  EXPECT_THAT(p.version, ::testing::StartsWith("local-mesh-"));
  EXPECT_EQ(p.classifier.endpoint, "127.0.0.1:50051");
  ASSERT_EQ(p.tiers.size(), 4u);
  const BackendConfig* tiny = p.FindBackend("worker-tiny");
  ASSERT_NE(tiny, nullptr);
  EXPECT_THAT(tiny->endpoints, ElementsAre("127.0.0.1:50052"));
  EXPECT_EQ(tiny->model, "tiny");
  EXPECT_TRUE(tiny->price.IsFree());
  const BackendConfig* cheap = p.FindBackend("cloud-cheap");
  ASSERT_NE(cheap, nullptr);
  EXPECT_THAT(cheap->endpoints, ElementsAre("127.0.0.1:50053"));
  EXPECT_EQ(cheap->model, "cloud-cheap");
  const BackendConfig* premium = p.FindBackend("cloud-premium");
  ASSERT_NE(premium, nullptr);
  EXPECT_EQ(premium->model, "cloud-premium");
  EXPECT_EQ(premium->price.output_nano_per_mtok, 15 * kNanoPerUsd);
  EXPECT_TRUE(p.callers.allow_anonymous);
  EXPECT_EQ(p.callers.keys.size(), 3u);
}

TEST(ExamplePolicyTest, AddressesComeFromTheEnvironment) {
  ASSERT_OK_AND_ASSIGN(Policy p, Load(config::MapEnv({{"TIERMESH_WORKER_ADDR", "worker:50052"},
                                                      {"TIERMESH_CLOUD_PROXY_ADDR", "cloud:50053"},
                                                      {"TIERMESH_CLASSIFIER_ADDR", "cls:50051"}})));
  EXPECT_EQ(p.classifier.endpoint, "cls:50051");
  EXPECT_THAT(p.FindBackend("worker-tiny")->endpoints, ElementsAre("worker:50052"));
  EXPECT_THAT(p.FindBackend("cloud-premium")->endpoints, ElementsAre("cloud:50053"));
}

TEST(ExamplePolicyTest, RoutesAsDocumented) {
  ASSERT_OK_AND_ASSIGN(Policy p, Load(config::MapEnv({})));
  struct Case {
    const char* name;
    TaskType task;
    double complexity;
    bool pii;
    bool tools;
    UserTier tier;
    const char* rule;
    const char* first_backend;
  };
  const Case cases[] = {
      {"small talk", TaskType::kChat, 0.1, false, false, UserTier::kPaid, "default", "worker-tiny"},
      {"weather lookup", TaskType::kTool, 0.2, false, false, UserTier::kPaid, "tool-task",
       "worker-tools"},
      {"function offered", TaskType::kChat, 0.2, false, true, UserTier::kFree, "tools-offered",
       "worker-tools"},
      {"proof", TaskType::kReasoning, 0.9, false, false, UserTier::kPaid, "hard", "cloud-premium"},
      {"proof from a free user", TaskType::kReasoning, 0.9, false, false, UserTier::kFree, "hard",
       "cloud-cheap"},
      {"medium code", TaskType::kCode, 0.28, false, false, UserTier::kPaid, "technical-medium",
       "cloud-cheap"},
      {"simple code", TaskType::kCode, 0.15, false, false, UserTier::kPaid, "default",
       "worker-tiny"},
      {"medium chat", TaskType::kChat, 0.31, false, false, UserTier::kPaid, "medium",
       "cloud-cheap"},
      {"everyday rewrite", TaskType::kChat, 0.25, false, false, UserTier::kPaid, "default",
       "worker-tiny"},
      {"card number", TaskType::kReasoning, 0.9, true, false, UserTier::kPaid, "pii-stays-local",
       "worker-tiny"},
      {"byok small talk", TaskType::kChat, 0.1, false, false, UserTier::kByok, "default",
       "cloud-cheap"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    RequestFacts f;
    f.task = c.task;
    f.complexity = c.complexity;
    f.pii = c.pii;
    f.tools_offered = c.tools;
    f.prompt_tokens = 200;
    f.user_tier = c.tier;
    ASSERT_OK_AND_ASSIGN(Decision d, Decide(p, f, RuntimeView{}));
    EXPECT_EQ(d.rule, c.rule);
    ASSERT_NE(d.FirstEligible(), nullptr);
    EXPECT_EQ(d.FirstEligible()->backend, c.first_backend);
  }
}

TEST(ExamplePolicyTest, DemoKeysAuthenticate) {
  ASSERT_OK_AND_ASSIGN(Policy p, Load(config::MapEnv({})));
  ASSERT_OK_AND_ASSIGN(Caller paid,
                       Authenticate(p.callers, absl::string_view("Bearer tm-demo-paid")));
  EXPECT_EQ(paid.tenant, "demo-paid");
  EXPECT_EQ(paid.user_tier, UserTier::kPaid);
  ASSERT_OK_AND_ASSIGN(Caller byok,
                       Authenticate(p.callers, absl::string_view("Bearer tm-demo-byok")));
  EXPECT_EQ(byok.user_tier, UserTier::kByok);
  ASSERT_OK_AND_ASSIGN(Caller anonymous, Authenticate(p.callers, absl::nullopt));
  EXPECT_EQ(anonymous.tenant, "local");
  EXPECT_FALSE(Authenticate(p.callers, absl::string_view("Bearer tm-demo-gold")).ok());

  const BudgetLimits limits = BudgetLimitsFromPolicy(p);
  EXPECT_EQ(limits.global_daily, 20 * kNanoPerUsd);
  EXPECT_EQ(limits.tenant_daily.at("demo-free"), 1 * kNanoPerUsd);
  EXPECT_EQ(limits.tenant_daily.at("local"), 2 * kNanoPerUsd);
  EXPECT_EQ(limits.tenant_daily.count("demo-byok"), 0u);
}

}  // namespace
}  // namespace tiermesh::router
