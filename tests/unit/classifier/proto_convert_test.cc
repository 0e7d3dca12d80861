#include "services/classifier/proto_convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/classifier/text.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::classifier {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

TEST(InputFromProtoTest, TextBecomesOneUserMessage) {
  tiermesh::v1::ClassifyRequest request;
  request.set_text("hello");
  request.add_tools()->set_name("search");
  ASSERT_OK_AND_ASSIGN(const ClassifyInput in, InputFromProto(request));
  ASSERT_EQ(in.messages.size(), 1u);
  EXPECT_EQ(in.messages[0].role, Role::kUser);
  EXPECT_EQ(in.messages[0].content, "hello");
  ASSERT_EQ(in.tools.size(), 1u);
  EXPECT_EQ(in.tools[0].name, "search");
}

TEST(InputFromProtoTest, MessagesKeepRolesAndToolCalls) {
  tiermesh::v1::ClassifyRequest request;
  auto* system = request.add_messages();
  system->set_role(tiermesh::v1::ROLE_SYSTEM);
  system->set_content("be brief");
  auto* assistant = request.add_messages();
  assistant->set_role(tiermesh::v1::ROLE_ASSISTANT);
  assistant->add_tool_calls()->set_name("f");
  auto* tool = request.add_messages();
  tool->set_role(tiermesh::v1::ROLE_TOOL);
  auto* unknown = request.add_messages();
  unknown->set_role(static_cast<tiermesh::v1::Role>(42));
  ASSERT_OK_AND_ASSIGN(const ClassifyInput in, InputFromProto(request));
  ASSERT_EQ(in.messages.size(), 4u);
  EXPECT_EQ(in.messages[0].role, Role::kSystem);
  EXPECT_EQ(in.messages[1].role, Role::kAssistant);
  EXPECT_EQ(in.messages[1].tool_call_count, 1);
  EXPECT_EQ(in.messages[2].role, Role::kTool);
  EXPECT_EQ(in.messages[3].role, Role::kUnspecified);
}

TEST(InputFromProtoTest, TextAndMessagesTogetherAreRefused) {
  tiermesh::v1::ClassifyRequest request;
  request.set_text("a");
  request.add_messages()->set_content("b");
  EXPECT_THAT(InputFromProto(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not both")));
}

TEST(ToProtoTest, CopiesEveryField) {
  Classification c;
  c.task = TaskType::kCode;
  c.probabilities = {0.1f, 0.1f, 0.6f, 0.1f, 0.1f};
  c.confidence = 0.6f;
  c.complexity = 0.42f;
  c.approx_tokens = 77;
  c.pii_detected = true;
  c.pii_kinds = {"email"};
  c.reasons = {{"word:python", 1.5f}, {"bad\xFF", 0.5f}};
  c.model_version = "default.tmcl@0123456789ab";
  const tiermesh::v1::Classification p = ToProto(c);
  EXPECT_EQ(p.task(), tiermesh::v1::TASK_TYPE_CODE);
  ASSERT_EQ(p.probabilities_size(), 5);
  EXPECT_EQ(p.probabilities(0).task(), tiermesh::v1::TASK_TYPE_CHAT);
  EXPECT_EQ(p.probabilities(2).task(), tiermesh::v1::TASK_TYPE_CODE);
  EXPECT_FLOAT_EQ(p.probabilities(2).probability(), 0.6f);
  EXPECT_FLOAT_EQ(p.confidence(), 0.6f);
  EXPECT_FLOAT_EQ(p.complexity(), 0.42f);
  EXPECT_EQ(p.approx_tokens(), 77);
  EXPECT_TRUE(p.pii_detected());
  ASSERT_EQ(p.pii_kinds_size(), 1);
  EXPECT_EQ(p.pii_kinds(0), "email");
  ASSERT_EQ(p.reasons_size(), 2);
  EXPECT_EQ(p.reasons(0).feature(), "word:python");
  EXPECT_FLOAT_EQ(p.reasons(0).weight(), 1.5f);
  EXPECT_TRUE(IsValidUtf8(p.reasons(1).feature()));
  EXPECT_EQ(p.model_version(), "default.tmcl@0123456789ab");
}

TEST(TaskToProtoTest, AllTasks) {
  EXPECT_EQ(TaskToProto(TaskType::kChat), tiermesh::v1::TASK_TYPE_CHAT);
  EXPECT_EQ(TaskToProto(TaskType::kTool), tiermesh::v1::TASK_TYPE_TOOL);
  EXPECT_EQ(TaskToProto(TaskType::kMath), tiermesh::v1::TASK_TYPE_MATH);
  EXPECT_EQ(TaskToProto(TaskType::kReasoning), tiermesh::v1::TASK_TYPE_REASONING);
  EXPECT_EQ(TaskToProto(TaskType::kUnspecified), tiermesh::v1::TASK_TYPE_UNSPECIFIED);
}

}  // namespace
}  // namespace tiermesh::classifier
