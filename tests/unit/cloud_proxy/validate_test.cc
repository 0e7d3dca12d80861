#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/cloud_proxy/provider.h"
#include "services/common/status/status_matchers.h"
#include "tests/unit/cloud_proxy/provider_test_util.h"

namespace tiermesh::cloud {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::cloud::test::Msg;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

struct ValidateCase {
  std::string name;
  std::function<void(tiermesh::v1::GenerateRequest&)> mutate;
  std::string error;  // "" = valid
};

class ValidateTest : public ::testing::TestWithParam<ValidateCase> {};

TEST_P(ValidateTest, Checks) {
  tiermesh::v1::GenerateRequest req = test::ToolConversation();
  GetParam().mutate(req);
  absl::Status s = ValidateGenerateRequest(req);
  if (GetParam().error.empty()) {
    EXPECT_THAT(s, IsOk());
  } else {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(GetParam().error)));
  }
}

using tiermesh::v1::GenerateRequest;

INSTANTIATE_TEST_SUITE_P(
    Table, ValidateTest,
    ::testing::Values(
        ValidateCase{"valid", [](GenerateRequest&) {}, ""},
        ValidateCase{"no_messages", [](GenerateRequest& r) { r.clear_messages(); }, "at least one"},
        ValidateCase{"role_unspecified",
                     [](GenerateRequest& r) {
                       r.mutable_messages(1)->set_role(tiermesh::v1::ROLE_UNSPECIFIED);
                     },
                     "messages[1]: role"},
        ValidateCase{"tool_calls_on_user",
                     [](GenerateRequest& r) {
                       auto* c = r.mutable_messages(1)->add_tool_calls();
                       c->set_id("x");
                       c->set_name("f");
                     },
                     "only assistant"},
        ValidateCase{
            "tool_call_without_id",
            [](GenerateRequest& r) { r.mutable_messages(2)->mutable_tool_calls(0)->clear_id(); },
            "id is required"},
        ValidateCase{"tool_answer_without_id",
                     [](GenerateRequest& r) { r.mutable_messages(3)->clear_tool_call_id(); },
                     "needs tool_call_id"},
        ValidateCase{"tool_answer_to_unknown_call",
                     [](GenerateRequest& r) { r.mutable_messages(3)->set_tool_call_id("nope"); },
                     "answers no earlier"},
        ValidateCase{"tool_call_id_on_user",
                     [](GenerateRequest& r) { r.mutable_messages(1)->set_tool_call_id("call_1"); },
                     "only for tool messages"},
        ValidateCase{"bad_tool_name",
                     [](GenerateRequest& r) { r.mutable_tools(0)->set_name("get weather"); },
                     "tools[0]: name"},
        ValidateCase{"duplicate_tool", [](GenerateRequest& r) { *r.add_tools() = r.tools(0); },
                     "duplicate tool"},
        ValidateCase{
            "schema_not_object",
            [](GenerateRequest& r) { r.mutable_tools(0)->set_parameters_json_schema("[]"); },
            "JSON object"},
        ValidateCase{
            "schema_not_json",
            [](GenerateRequest& r) { r.mutable_tools(0)->set_parameters_json_schema("{"); },
            "not valid JSON"},
        ValidateCase{"function_choice_unknown",
                     [](GenerateRequest& r) {
                       r.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_FUNCTION);
                       r.mutable_tool_choice()->set_function_name("nope");
                     },
                     "not one of the offered tools"},
        ValidateCase{"required_without_tools",
                     [](GenerateRequest& r) {
                       r.clear_tools();
                       r.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_REQUIRED);
                     },
                     "needs tools"},
        ValidateCase{
            "function_name_with_auto",
            [](GenerateRequest& r) { r.mutable_tool_choice()->set_function_name("get_weather"); },
            "only for MODE_FUNCTION"},
        ValidateCase{"max_tokens_zero",
                     [](GenerateRequest& r) { r.mutable_params()->set_max_tokens(0); },
                     "max_tokens"},
        ValidateCase{"max_tokens_huge",
                     [](GenerateRequest& r) { r.mutable_params()->set_max_tokens(1048577); },
                     "max_tokens"},
        ValidateCase{"temperature_high",
                     [](GenerateRequest& r) { r.mutable_params()->set_temperature(2.01f); },
                     "temperature"},
        ValidateCase{"temperature_nan",
                     [](GenerateRequest& r) { r.mutable_params()->set_temperature(std::nanf("")); },
                     "temperature"},
        ValidateCase{"top_p_zero", [](GenerateRequest& r) { r.mutable_params()->set_top_p(0.0f); },
                     "top_p"},
        ValidateCase{"top_p_one", [](GenerateRequest& r) { r.mutable_params()->set_top_p(1.0f); },
                     ""},
        ValidateCase{"top_k_negative",
                     [](GenerateRequest& r) { r.mutable_params()->set_top_k(-1); }, "top_k"},
        ValidateCase{"five_stops",
                     [](GenerateRequest& r) {
                       for (int i = 0; i < 5; ++i) r.mutable_params()->add_stop("s");
                     },
                     "at most 4"},
        ValidateCase{"empty_stop", [](GenerateRequest& r) { r.mutable_params()->add_stop(""); },
                     "1..256"},
        ValidateCase{"penalty_range",
                     [](GenerateRequest& r) { r.mutable_params()->set_presence_penalty(-2.5f); },
                     "presence_penalty"}),
    [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace tiermesh::cloud
