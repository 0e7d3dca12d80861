// Helpers for the provider adapter tests: request builders and a stream
// driver that assembles what a client would see.
#ifndef TIERMESH_TESTS_UNIT_CLOUD_PROXY_PROVIDER_TEST_UTIL_H_
#define TIERMESH_TESTS_UNIT_CLOUD_PROXY_PROVIDER_TEST_UTIL_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/cloud_proxy/provider.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::cloud::test {

inline tiermesh::http::SseEvent Ev(std::string data, std::string event = "message") {
  tiermesh::http::SseEvent e;
  e.event = std::move(event);
  e.data = std::move(data);
  return e;
}

inline tiermesh::v1::ChatMessage Msg(tiermesh::v1::Role role, std::string content) {
  tiermesh::v1::ChatMessage m;
  m.set_role(role);
  m.set_content(std::move(content));
  return m;
}

inline ModelConfig Model(std::string upstream = "up-model") {
  ModelConfig m;
  m.name = "m";
  m.upstream = std::move(upstream);
  return m;
}

inline ProviderConfig Provider(ProviderKind kind, std::string name = "prov") {
  ProviderConfig p;
  p.name = std::move(name);
  p.kind = kind;
  return p;
}

// A conversation exercising every mapping: system prompt, user, an assistant
// turn with text and two parallel tool calls, both answers, a last user turn.
inline tiermesh::v1::GenerateRequest ToolConversation() {
  tiermesh::v1::GenerateRequest req;
  req.set_model("m");
  *req.add_messages() = Msg(tiermesh::v1::ROLE_SYSTEM, "Be brief.");
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "Weather in Paris and Oslo?");
  tiermesh::v1::ChatMessage* a = req.add_messages();
  *a = Msg(tiermesh::v1::ROLE_ASSISTANT, "Checking.");
  auto* c1 = a->add_tool_calls();
  c1->set_id("call_1");
  c1->set_name("get_weather");
  c1->set_arguments_json(R"({"city":"Paris"})");
  auto* c2 = a->add_tool_calls();
  c2->set_id("call_2");
  c2->set_name("get_weather");
  c2->set_arguments_json(R"({"city":"Oslo"})");
  tiermesh::v1::ChatMessage t1 = Msg(tiermesh::v1::ROLE_TOOL, R"({"temp_c":21})");
  t1.set_tool_call_id("call_1");
  *req.add_messages() = t1;
  tiermesh::v1::ChatMessage t2 = Msg(tiermesh::v1::ROLE_TOOL, "cold");
  t2.set_tool_call_id("call_2");
  *req.add_messages() = t2;
  *req.add_messages() = Msg(tiermesh::v1::ROLE_USER, "Thanks");
  auto* tool = req.add_tools();
  tool->set_name("get_weather");
  tool->set_description("Current weather");
  tool->set_parameters_json_schema(
      R"({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})");
  req.mutable_tool_choice()->set_mode(tiermesh::v1::ToolChoice::MODE_AUTO);
  return req;
}

inline nlohmann::json Body(const HttpRequestSpec& spec) { return nlohmann::json::parse(spec.body); }

// What a client assembles from a stream.
struct Assembled {
  std::string text;
  struct Call {
    std::string id, name, arguments;
  };
  std::map<int, Call> calls;
  int deltas = 0;
  absl::Status status;  // first error, or OK after a complete end
  bool complete = false;
};

inline Assembled RunStream(StreamParser& parser,
                           const std::vector<tiermesh::http::SseEvent>& events, bool end = true) {
  Assembled out;
  auto apply = [&out](const StreamUpdate& u) {
    if (u.has_delta()) ++out.deltas;
    out.text += u.delta.content();
    for (const auto& d : u.delta.tool_calls()) {
      auto& c = out.calls[d.index()];
      if (!d.id().empty()) {
        EXPECT_TRUE(c.id.empty()) << "id sent twice for call " << d.index();
        c.id = d.id();
      }
      if (!d.name().empty()) {
        EXPECT_TRUE(c.name.empty()) << "name sent twice for call " << d.index();
        c.name = d.name();
      }
      c.arguments += d.arguments_json_delta();
    }
    if (u.complete) out.complete = true;
  };
  for (const auto& e : events) {
    absl::StatusOr<StreamUpdate> u = parser.OnEvent(e);
    if (!u.ok()) {
      out.status = u.status();
      return out;
    }
    apply(*u);
  }
  if (end) {
    absl::StatusOr<StreamUpdate> u = parser.OnEnd();
    if (!u.ok()) {
      out.status = u.status();
      return out;
    }
    apply(*u);
  }
  return out;
}

}  // namespace tiermesh::cloud::test

#endif  // TIERMESH_TESTS_UNIT_CLOUD_PROXY_PROVIDER_TEST_UTIL_H_
