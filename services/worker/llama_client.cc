#include "services/worker/llama_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/common/http/sse.h"

namespace tiermesh::worker {
namespace {

// Error bodies are short JSON objects; more is not worth buffering.
constexpr size_t kMaxErrorBodyBytes = 64 << 10;

// Transport errors keep their code (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) and say which
// upstream failed.
absl::Status Upstream(const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("llama-server: ", status.message()));
}

}  // namespace

LlamaClient::LlamaClient(http::HttpTransport* transport, std::string base_url, std::string api_key)
    : transport_(transport), base_url_(std::move(base_url)), api_key_(std::move(api_key)) {}

http::HttpRequest LlamaClient::NewRequest(http::HttpMethod method, absl::string_view path,
                                          const LlamaCallOptions& options) const {
  http::HttpRequest request;
  request.method = method;
  request.url = absl::StrCat(base_url_, path);
  if (!api_key_.empty()) request.headers.push_back({"Authorization", "Bearer " + api_key_});
  if (!options.traceparent.empty()) {
    request.headers.push_back({"traceparent", options.traceparent});
  }
  request.deadline = options.deadline;
  request.cancel = options.cancel;
  return request;
}

absl::StatusOr<LlamaCompletion> LlamaClient::Complete(const tiermesh::v1::GenerateRequest& request,
                                                      const LlamaCallOptions& options) const {
  absl::StatusOr<std::string> body = BuildChatCompletionBody(request, /*stream=*/false);
  if (!body.ok()) return body.status();
  http::HttpRequest http_request =
      NewRequest(http::HttpMethod::kPost, "/v1/chat/completions", options);
  http_request.headers.push_back({"Content-Type", "application/json"});
  http_request.body = *std::move(body);
  absl::StatusOr<http::HttpResponse> response = transport_->Fetch(http_request);
  if (!response.ok()) return Upstream(response.status());
  if (response->status_code != 200) {
    return LlamaErrorToStatus(response->status_code, response->body);
  }
  return ParseChatCompletion(response->body);
}

absl::Status LlamaClient::Stream(const tiermesh::v1::GenerateRequest& request,
                                 const LlamaCallOptions& options,
                                 const std::function<bool(const StreamDelta&)>& on_delta,
                                 StreamOutcome* outcome) const {
  absl::StatusOr<std::string> body = BuildChatCompletionBody(request, /*stream=*/true);
  if (!body.ok()) return body.status();
  http::HttpRequest http_request =
      NewRequest(http::HttpMethod::kPost, "/v1/chat/completions", options);
  http_request.headers.push_back({"Content-Type", "application/json"});
  http_request.headers.push_back({"Accept", "text/event-stream"});
  http_request.body = *std::move(body);
  http_request.idle_timeout = options.idle_timeout;

  int status_code = 0;
  std::string error_body;
  http::SseDecoder sse;
  ChatStreamDecoder decoder;
  // Why the transfer was stopped from inside a callback, if it was.
  absl::Status stopped;
  auto deliver = [&](StreamDelta delta) {
    if (delta.empty()) return true;
    if (!on_delta(delta)) {
      stopped = absl::CancelledError("the caller stopped reading the stream");
      return false;
    }
    return true;
  };

  http::HttpStreamCallbacks callbacks;
  callbacks.on_head = [&](const http::HttpResponseHead& head) {
    status_code = head.status_code;
    return true;  // an error body is read (bounded) to explain the failure
  };
  callbacks.on_body = [&](absl::string_view chunk) {
    if (status_code != 200) {
      const size_t room = kMaxErrorBodyBytes - error_body.size();  // never negative
      error_body.append(chunk.data(), std::min(chunk.size(), room));
      return true;
    }
    absl::Status fed = sse.Feed(chunk, [&](http::SseEvent&& event) {
      if (!stopped.ok()) return;
      absl::StatusOr<StreamDelta> delta = decoder.OnEvent(event);
      if (!delta.ok()) {
        stopped = delta.status();
        return;
      }
      deliver(*std::move(delta));
    });
    if (!fed.ok() && stopped.ok()) {
      stopped = absl::Status(fed.code(), absl::StrCat("llama-server stream: ", fed.message()));
    }
    return stopped.ok();
  };

  const absl::Status sent = transport_->Send(http_request, callbacks);
  auto finish = [&](absl::Status status) {
    if (outcome != nullptr) *outcome = decoder.outcome();
    return status;
  };
  if (!stopped.ok()) return finish(stopped);
  if (!sent.ok()) return finish(Upstream(sent));
  if (status_code != 200) return finish(LlamaErrorToStatus(status_code, error_body));
  if (absl::Status end = sse.Finish(); !end.ok()) {
    // The body ended inside an event: the connection was cut.
    return finish(absl::UnavailableError(absl::StrCat("llama-server stream: ", end.message())));
  }
  absl::StatusOr<StreamDelta> last = decoder.Finish();
  if (!last.ok()) return finish(last.status());
  if (!deliver(*std::move(last))) return finish(stopped);
  return finish(absl::OkStatus());
}

absl::StatusOr<std::string> LlamaClient::GetBody(absl::string_view path,
                                                 const LlamaCallOptions& options) const {
  http::HttpRequest request = NewRequest(http::HttpMethod::kGet, path, options);
  absl::StatusOr<http::HttpResponse> response = transport_->Fetch(request);
  if (!response.ok()) return Upstream(response.status());
  if (response->status_code != 200) {
    return LlamaErrorToStatus(response->status_code, response->body);
  }
  return std::move(response->body);
}

absl::StatusOr<int> LlamaClient::Health(const LlamaCallOptions& options) const {
  http::HttpRequest request = NewRequest(http::HttpMethod::kGet, "/health", options);
  request.max_response_bytes = kMaxErrorBodyBytes;
  absl::StatusOr<http::HttpResponse> response = transport_->Fetch(request);
  if (!response.ok()) return Upstream(response.status());
  return response->status_code;
}

absl::StatusOr<SlotsSnapshot> LlamaClient::Slots(const LlamaCallOptions& options) const {
  absl::StatusOr<std::string> body = GetBody("/slots", options);
  if (!body.ok()) return body.status();
  return ParseSlots(*body);
}

absl::StatusOr<PropsSnapshot> LlamaClient::Props(const LlamaCallOptions& options) const {
  absl::StatusOr<std::string> body = GetBody("/props", options);
  if (!body.ok()) return body.status();
  return ParseProps(*body);
}

absl::StatusOr<LlamaMetrics> LlamaClient::Metrics(const LlamaCallOptions& options) const {
  absl::StatusOr<std::string> body = GetBody("/metrics", options);
  if (!body.ok()) return body.status();
  return ParseLlamaMetrics(*body);
}

}  // namespace tiermesh::worker
