// The interface every upstream API adapter implements, and the shared stream
// parser base. An adapter is pure: it turns a tiermesh GenerateRequest into
// an HTTP request spec, and HTTP answers / SSE events back into tiermesh
// messages or a mapped Status. It never does I/O, never sees a clock it was
// not given, and never holds a key (AuthHeader() builds the one header the
// transport adds).
//
//   std::unique_ptr<ProviderAdapter> adapter = MakeProviderAdapter(provider_config);
//   ASSIGN_OR_RETURN(HttpRequestSpec spec, adapter->BuildRequest(request, model, /*stream=*/true));
//   std::unique_ptr<StreamParser> parser =
//       adapter->NewStreamParser({EstimatePromptTokens(request), absl::Now()});
//   for each SSE event:  ASSIGN_OR_RETURN(StreamUpdate u, parser->OnEvent(event));  // send u.delta
//   at body end:         ASSIGN_OR_RETURN(StreamUpdate u, parser->OnEnd());  // error unless
//   complete parser->usage();     // always filled (estimated when the provider sent none)
//
// Request mapping rules shared by all adapters (see each adapter's header
// for its own details):
// - The request is validated first (ValidateGenerateRequest): bad input is
//   INVALID_ARGUMENT, never silently fixed.
// - Tool-call arguments and tool parameter schemas must be JSON objects when
//   the provider needs them as objects (Anthropic, Gemini).
// - Parameters a provider does not support are dropped only where the proto
//   says "where the backend supports it" (top_k, seed); others are an error.
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_PROVIDER_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_PROVIDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "nlohmann/json.hpp"

#include "services/cloud_proxy/config.h"
#include "services/cloud_proxy/http_types.h"
#include "services/common/http/sse.h"
#include "services/common/text/utf8.h"
#include "tiermesh/v1/common.pb.h"
#include "tiermesh/v1/inference.pb.h"

namespace tiermesh::cloud {

// What parsing needs besides the bytes.
struct ParseContext {
  // Used when the provider reports no usage (see usage.h).
  int64_t estimated_prompt_tokens = 0;
  // For Retry-After HTTP-dates.
  absl::Time now = absl::UnixEpoch();
};

// What one SSE event changed.
struct StreamUpdate {
  // New text / tool-call pieces (valid UTF-8); empty when the event had none.
  tiermesh::v1::Delta delta;
  bool usage_updated = false;
  bool finish_reason_set = false;
  // The provider's end marker arrived (or, for Gemini, the body ended after a
  // finish reason): the answer is complete.
  bool complete = false;

  bool has_delta() const { return !delta.content().empty() || delta.tool_calls_size() > 0; }
};

// Incremental parser of one provider stream. Errors are sticky: after a
// non-OK result every later call returns the same status. Not thread-safe.
// Token counts as a provider reported them; each stays unset when the provider did not say.
struct ReportedUsage {
  absl::optional<int64_t> prompt;
  absl::optional<int64_t> completion;
  absl::optional<int64_t> cached;
};

class StreamParser {
 public:
  StreamParser(std::string provider, ParseContext context)
      : provider_(std::move(provider)), context_(context) {}
  virtual ~StreamParser() = default;
  StreamParser(const StreamParser&) = delete;
  StreamParser& operator=(const StreamParser&) = delete;

  // One decoded SSE event. An in-stream error event, malformed JSON or an
  // event after the end marker gives a non-OK status.
  [[nodiscard]] absl::StatusOr<StreamUpdate> OnEvent(const tiermesh::http::SseEvent& event);
  // The body ended. Flushes held UTF-8 bytes into a last delta. UNAVAILABLE
  // (reason "stream_cut") unless the stream was complete.
  [[nodiscard]] absl::StatusOr<StreamUpdate> OnEnd();

  bool complete() const { return complete_; }
  bool failed() const { return !error_.ok(); }
  tiermesh::v1::FinishReason finish_reason() const { return finish_reason_; }
  // The provider's model name when it sent one.
  const std::string& model() const { return model_; }
  // Usage so far, always filled: the provider's counts when it sent them
  // (for an incomplete stream: at least the estimate of what was received),
  // else estimates (Usage.estimated).
  tiermesh::v1::Usage usage() const;
  // Bytes of text and tool-call data emitted so far.
  int64_t output_bytes() const { return output_bytes_; }

 protected:
  // Implemented per provider: handle one event, appending to `out`.
  [[nodiscard]] virtual absl::Status HandleEvent(const tiermesh::http::SseEvent& event,
                                                 StreamUpdate* out) = 0;
  // Called at body end of a stream not yet complete (Gemini completes here).
  [[nodiscard]] virtual absl::Status HandleEnd(StreamUpdate* out) { return absl::OkStatus(); }

  // Helpers for the implementations.
  // Parses an event's JSON data. A chunk that is not valid UTF-8 (a server
  // splitting a character across chunks) is read through text::EscapeInvalidUtf8,
  // and the Emit* calls of this event turn the bytes back, so the character
  // is reassembled instead of lost.
  [[nodiscard]] absl::StatusOr<nlohmann::json> ParseEventData(absl::string_view data);
  void EmitText(absl::string_view bytes, StreamUpdate* out);
  // `id`/`name` are sent only on the first delta of a call.
  void EmitToolCall(int index, absl::string_view id, absl::string_view name,
                    absl::string_view arguments, StreamUpdate* out);
  // `detail` is the provider's own spelling, for error messages.
  void SetFinishReason(tiermesh::v1::FinishReason reason, absl::string_view detail,
                       StreamUpdate* out);
  void SetModel(std::string model) { model_ = std::move(model); }
  // Ends the stream: flushes held UTF-8 bytes into `out` and checks the
  // finish reason (a content-filter stop with no output, or an abnormal
  // finish, is an error; see internal::CheckFinish).
  [[nodiscard]] absl::Status MarkComplete(StreamUpdate* out);
  // Provider counts; unset ones stay unknown.
  void SetProviderUsage(const ReportedUsage& usage, StreamUpdate* out);
  bool any_output() const { return output_bytes_ > 0; }
  const ParseContext& context() const { return context_; }
  const std::string& provider() const { return provider_; }

 private:
  tiermesh::v1::ToolCallDelta* ToolDelta(int index, StreamUpdate* out);

  std::string provider_;
  ParseContext context_;
  absl::Status error_;
  bool complete_ = false;
  bool ended_ = false;
  tiermesh::v1::FinishReason finish_reason_ = tiermesh::v1::FINISH_REASON_UNSPECIFIED;
  std::string finish_detail_;
  std::string model_;
  absl::optional<int64_t> provider_prompt_;
  absl::optional<int64_t> provider_completion_;
  absl::optional<int64_t> provider_cached_;
  int64_t output_bytes_ = 0;
  bool event_escaped_ = false;  // the current event went through text::EscapeInvalidUtf8
  text::Utf8StreamRepairer text_utf8_;
  std::map<int, text::Utf8StreamRepairer> tool_utf8_;  // per tool-call index
};

class ProviderAdapter {
 public:
  virtual ~ProviderAdapter() = default;

  virtual ProviderKind kind() const = 0;
  virtual const ProviderConfig& config() const = 0;

  // The HTTP request for `request` on `model`. INVALID_ARGUMENT for a request
  // this provider cannot express.
  [[nodiscard]] virtual absl::StatusOr<HttpRequestSpec> BuildRequest(
      const tiermesh::v1::GenerateRequest& request, const ModelConfig& model,
      bool stream) const = 0;

  // The authentication header carrying `key` ("Authorization: Bearer ...",
  // "x-api-key", "x-goog-api-key"). Only the transport calls this.
  virtual std::pair<std::string, std::string> AuthHeader(absl::string_view key) const = 0;

  // A whole unary answer: the response, or the mapped error for a non-2xx
  // status / an error body / a malformed body. Usage and model are filled
  // (cost and timings are the caller's).
  [[nodiscard]] virtual absl::StatusOr<tiermesh::v1::GenerateResponse> ParseResponse(
      const HttpResponse& response, const ParseContext& context) const = 0;

  // Maps a non-2xx answer (streaming requests get their error status before
  // any event).
  [[nodiscard]] absl::Status MapError(const HttpResponse& response, absl::Time now) const;

  virtual std::unique_ptr<StreamParser> NewStreamParser(const ParseContext& context) const = 0;
};

// The adapter for `config.kind`.
std::unique_ptr<ProviderAdapter> MakeProviderAdapter(ProviderConfig config);

// Range and shape checks of a GenerateRequest (proto comments): at least one
// message, known roles, tool answers naming a call, tool names, parameter
// ranges, stop sequences. INVALID_ARGUMENT naming the field.
[[nodiscard]] absl::Status ValidateGenerateRequest(const tiermesh::v1::GenerateRequest& request);

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_PROVIDER_H_
