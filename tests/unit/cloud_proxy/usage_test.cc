#include "services/cloud_proxy/usage.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tiermesh::cloud {
namespace {

TEST(EstimateTokensFromBytes, RoundsUp) {
  struct Case {
    int64_t bytes;
    int64_t tokens;
  };
  for (const Case& c :
       {Case{0, 0}, Case{-3, 0}, Case{1, 1}, Case{4, 1}, Case{5, 2}, Case{400, 100}}) {
    EXPECT_EQ(EstimateTokensFromBytes(c.bytes), c.tokens) << c.bytes;
  }
}

TEST(EstimatePromptTokens, CountsMessagesToolCallsAndTools) {
  tiermesh::v1::GenerateRequest req;
  EXPECT_EQ(EstimatePromptTokens(req), 3);  // reply priming only
  auto* m = req.add_messages();
  m->set_role(tiermesh::v1::ROLE_USER);
  m->set_content(std::string(8, 'x'));  // 2 tokens + 4 framing
  EXPECT_EQ(EstimatePromptTokens(req), 3 + 4 + 2);
  auto* a = req.add_messages();
  a->set_role(tiermesh::v1::ROLE_ASSISTANT);
  auto* call = a->add_tool_calls();
  call->set_id("c1");                     // 2
  call->set_name("get");                  // 3
  call->set_arguments_json("{\"a\":1}");  // 7 -> 12 bytes = 3 tokens
  EXPECT_EQ(EstimatePromptTokens(req), 3 + 6 + 4 + 3);
  auto* tool = req.add_tools();
  tool->set_name("get");  // 3 bytes -> 1 token + 8
  EXPECT_EQ(EstimatePromptTokens(req), 3 + 6 + 7 + 9);
}

TEST(MakeUsage, FillsTotal) {
  tiermesh::v1::Usage u = MakeUsage(10, 5, 2, true);
  EXPECT_EQ(u.prompt_tokens(), 10);
  EXPECT_EQ(u.completion_tokens(), 5);
  EXPECT_EQ(u.cached_prompt_tokens(), 2);
  EXPECT_EQ(u.total_tokens(), 15);
  EXPECT_TRUE(u.estimated());
}

}  // namespace
}  // namespace tiermesh::cloud
