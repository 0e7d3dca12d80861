// A fake LLM provider for tests: one loopback HTTP server that speaks the
// three upstream APIs the cloud-proxy uses, in their documented unary and
// streaming formats, scripted per model, and keeping its own ledger of every
// attempt and of the tokens it charged (the oracle for usage/cost tests).
//
//   ASSERT_OK_AND_ASSIGN(auto fake, FakeProvider::Start());
//   FakeModelScript hello;
//   hello.reply = "Hello there";
//   hello.tokens_per_second = 200;
//   fake->SetModel("gpt-fake", hello);
//   FakeModelScript limited;
//   limited.status = 429;
//   limited.retry_after_seconds = 7;
//   fake->SetModel("busy", limited);
//   // openai_compatible base_url: fake->openai_base_url()   (".../v1")
//   // anthropic / gemini base_url: fake->base_url()
//   ... run the cloud-proxy against it ...
//   std::vector<FakeAttempt> ledger = fake->attempts();
//
// Endpoints (written from the providers' public API references):
//   POST /v1/chat/completions                       OpenAI Chat Completions
//        key: "Authorization: Bearer <key>"; SSE `data:` chunks, usage chunk
//        (choices: []) when stream_options.include_usage, then `data: [DONE]`
//   POST /v1/messages                               Anthropic Messages
//        key: x-api-key; needs anthropic-version; SSE events message_start,
//        content_block_start/delta/stop, ping, message_delta (usage),
//        message_stop; error events
//   POST /v1beta/models/<model>:generateContent     Gemini
//   POST /v1beta/models/<model>:streamGenerateContent?alt=sse
//        key: x-goog-api-key (a key in the URL is refused with 400); SSE
//        chunks, each a GenerateContentResponse; no end marker
//
// Tokens: the reply is cut into tokens at word starts ("Hello", " there");
// each tool call costs 1 token for its name plus 1 per argument piece. The
// prompt costs ceil(request body bytes / 4) unless the script fixes it. A
// request's max_tokens (max_output_tokens, max_completion_tokens) cuts the
// reply and ends with the provider's length finish reason. What was sent is
// what the ledger and the reported usage say, exactly.
#ifndef TIERMESH_TESTS_FAKES_FAKE_PROVIDER_FAKE_PROVIDER_H_
#define TIERMESH_TESTS_FAKES_FAKE_PROVIDER_FAKE_PROVIDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

#include "tests/fakes/http_server/fake_http_server.h"

namespace tiermesh::testing {

enum class FakeApi { kOpenAi, kAnthropic, kGemini };
const char* FakeApiName(FakeApi api);

struct FakeToolCallScript {
  std::string name;
  std::string arguments_json = "{}";  // sent in pieces of `argument_piece_bytes`
};

// How one model behaves. Defaults: a short successful answer, instantly.
struct FakeModelScript {
  std::string reply = "Hello from the fake provider.";
  std::vector<FakeToolCallScript> tool_calls;  // answered after the text
  size_t argument_piece_bytes = 8;
  int64_t prompt_tokens = -1;  // -1: ceil(body bytes / 4)

  absl::Duration latency = absl::ZeroDuration();              // before the response head
  absl::Duration time_to_first_token = absl::ZeroDuration();  // streaming: head -> 1st token
  double tokens_per_second = 0;                               // streaming: 0 = no pacing

  // Non-200: the provider's error body for this status (and no answer).
  int status = 200;
  std::string error_type;     // override the provider's error type (OpenAI: type)
  std::string error_code;     // OpenAI error.code (e.g. "context_length_exceeded")
  std::string error_message;  // override the message
  absl::optional<int64_t> retry_after_seconds;  // Retry-After header on errors

  // Streaming faults, after N tokens were sent (-1: never).
  int cut_after_tokens = -1;          // close the connection, no end marker
  int stall_after_tokens = -1;        // send nothing more until the client leaves
  int reset_after_tokens = -1;        // TCP RST
  int malformed_after_tokens = -1;    // a chunk that is not JSON, then close
  int error_event_after_tokens = -1;  // the provider's in-stream error event
  int error_event_status = 529;       // which error the event stands for

  // Report usage (OpenAI: only when asked with include_usage, as documented).
  bool send_usage = true;
};

// One request as the fake saw and answered it.
struct FakeAttempt {
  FakeApi api = FakeApi::kOpenAi;
  std::string model;
  bool stream = false;
  int http_status = 0;
  int64_t prompt_tokens = 0;      // charged (0 when the request was refused)
  int64_t completion_tokens = 0;  // actually sent
  bool completed = false;         // the whole answer (and its end marker) was sent
  bool client_went_away = false;  // a write failed: the client closed first
  std::string api_key;            // the key presented (tests of BYOK / key use)
  std::string path;               // including the query
  std::string request_body;
  absl::Time started;
  absl::Time ended;
};

class FakeProvider {
 public:
  static absl::StatusOr<std::unique_ptr<FakeProvider>> Start();
  ~FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  std::string base_url() const;         // http://127.0.0.1:<port>
  std::string openai_base_url() const;  // base_url() + "/v1"

  // Scripts by upstream model name; unknown models use the default script.
  void SetModel(const std::string& model, FakeModelScript script);
  void SetDefault(FakeModelScript script);
  // When not empty, any other key is refused (401, the provider's auth error).
  void SetAcceptedKeys(std::vector<std::string> keys);

  std::vector<FakeAttempt> attempts() const;
  bool WaitForAttempts(size_t count, absl::Duration timeout) const;
  // Sums over the ledger.
  int64_t total_prompt_tokens() const;
  int64_t total_completion_tokens() const;

  FakeHttpServer& http() { return *server_; }

 private:
  FakeProvider() = default;
  void Handle(const FakeHttpRequest& request, FakeHttpResponder& responder);
  FakeModelScript ScriptFor(const std::string& model) const;
  bool KeyAccepted(const std::string& key) const;
  void Record(FakeAttempt attempt);

  std::unique_ptr<FakeHttpServer> server_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::map<std::string, FakeModelScript> scripts_;
  FakeModelScript default_script_;
  std::vector<std::string> accepted_keys_;
  std::vector<FakeAttempt> attempts_;
};

}  // namespace tiermesh::testing

#endif  // TIERMESH_TESTS_FAKES_FAKE_PROVIDER_FAKE_PROVIDER_H_
