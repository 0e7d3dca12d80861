// JSON <-> classifier request/verdict for the classifier tools (trainer,
// tiermesh-classify, data preparation). One JSON object per line:
//   {"id": "q1", "text": "weather in Paris?"}
//   {"messages": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
//    "tools": [{"name": "get_weather", "description": "..."}]}
// `messages[].content` may also be OpenAI-style parts ([{"type": "text", "text": ...}]);
// tools may also be OpenAI-style ({"type": "function", "function": {...}}).
//
//   ASSIGN_OR_RETURN(OwnedRequest r, ParseRequest(nlohmann::json::parse(line)));
//   Classification c = ClassifyWithModel(model, r.View(), 5);
#ifndef TIERMESH_TOOLS_CLASSIFIER_REQUEST_JSON_H_
#define TIERMESH_TOOLS_CLASSIFIER_REQUEST_JSON_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

#include "services/classifier/types.h"

namespace tiermesh::classifier {

// A request that owns its text (ClassifyInput only views it).
struct OwnedRequest {
  struct Message {
    Role role = Role::kUser;
    std::string content;
    int tool_calls = 0;
  };
  struct Tool {
    std::string name;
    std::string description;
    std::string parameters_json_schema;
  };
  std::string id;  // "" when the line has none
  std::vector<Message> messages;
  std::vector<Tool> tools;

  // Views into this object; valid while it lives and is not modified.
  ClassifyInput View() const;
  // All message contents joined by "\n" (for de-duplication and reports).
  std::string JoinedText() const;
};

// Parses one request object. INVALID_ARGUMENT (naming the field) when it has
// neither `text` nor `messages`, both, or a field of the wrong type.
[[nodiscard]] absl::StatusOr<OwnedRequest> ParseRequest(const nlohmann::json& object);

// The request as JSON (`text` when it is one user message without tools,
// else `messages`/`tools`), plus `id` when set.
nlohmann::json RequestToJson(const OwnedRequest& request);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_TOOLS_CLASSIFIER_REQUEST_JSON_H_
