#include "services/cloud_proxy/upstream_client.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "services/cloud_proxy/errors.h"
#include "services/cloud_proxy/usage.h"
#include "services/common/http/sse.h"
#include "services/common/status/status.h"
#include "services/common/tracing/propagation.h"

namespace tiermesh::cloud {

Headers ToHeaders(const tiermesh::http::HttpHeaders& headers) {
  Headers out;
  out.reserve(headers.size());
  for (const auto& h : headers) out.emplace_back(h.name, h.value);
  return out;
}

absl::Status MapTransportStatus(absl::string_view provider, const absl::Status& status) {
  if (status.ok()) return status;
  TransportFailure failure = TransportFailure::kReset;
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      failure = TransportFailure::kDeadline;
      break;
    case absl::StatusCode::kCancelled:
      failure = TransportFailure::kCancelled;
      break;
    case absl::StatusCode::kUnavailable:
      if (absl::StrContains(status.message(), "stalled")) {
        failure = TransportFailure::kIdleTimeout;
      } else if (absl::StrContains(status.message(), "TLS") ||
                 absl::StrContains(status.message(), "SSL") ||
                 absl::StrContains(status.message(), "certificate")) {
        failure = TransportFailure::kTls;
      } else if (absl::StrContains(status.message(), "connect") ||
                 absl::StrContains(status.message(), "resolve")) {
        failure = TransportFailure::kConnect;
      }
      break;
    default:
      // A malformed URL or header is a configuration error, not a provider one.
      return absl::Status(status.code(), absl::StrCat(provider, ": ", status.message()));
  }
  return MapTransportFailure(provider, failure, status.message());
}

absl::StatusOr<tiermesh::http::HttpRequest> UpstreamClient::MakeHttpRequest(
    const UpstreamCall& call, const tiermesh::v1::GenerateRequest& request, bool stream) const {
  if (call.adapter == nullptr || call.model == nullptr) {
    return absl::InternalError("upstream call without adapter or model");
  }
  absl::StatusOr<HttpRequestSpec> spec = call.adapter->BuildRequest(request, *call.model, stream);
  if (!spec.ok()) return spec.status();
  tiermesh::http::HttpRequest http;
  http.method = tiermesh::http::HttpMethod::kPost;
  http.url = call.adapter->config().base_url + spec->path;
  for (auto& [name, value] : spec->headers) http.headers.push_back({name, value});
  auto [auth_name, auth_value] = call.adapter->AuthHeader(call.key);
  http.headers.push_back({std::move(auth_name), std::move(auth_value)});
  http.body = std::move(spec->body);
  http.deadline = call.deadline;
  http.idle_timeout = call.adapter->config().idle_timeout;
  http.connect_timeout = call.adapter->config().connect_timeout;
  http.cancel = call.cancel;
  return http;
}

tiermesh::tracing::Span UpstreamClient::StartSpan(const UpstreamCall& call, bool stream,
                                                  tiermesh::http::HttpRequest* http) const {
  tiermesh::tracing::Span span = tiermesh::tracing::StartHttpClientSpan(tracer_, call.parent, http);
  span.SetAttribute("tiermesh.provider", call.adapter->config().name);
  span.SetAttribute("tiermesh.model", call.model->name);
  span.SetAttribute("gen_ai.request.model", call.model->upstream);
  span.SetAttribute("tiermesh.stream", stream);
  return span;
}

namespace {

void RecordUsage(const tiermesh::v1::Usage& usage, tiermesh::tracing::Span* span) {
  span->SetAttribute("gen_ai.usage.input_tokens", usage.prompt_tokens());
  span->SetAttribute("gen_ai.usage.output_tokens", usage.completion_tokens());
}

}  // namespace

absl::StatusOr<tiermesh::v1::GenerateResponse> UpstreamClient::Generate(
    const UpstreamCall& call, const tiermesh::v1::GenerateRequest& request) const {
  const std::vector<std::string> secrets = {call.key};
  absl::StatusOr<tiermesh::http::HttpRequest> http = MakeHttpRequest(call, request, false);
  if (!http.ok()) return RedactStatus(http.status(), secrets);
  const std::string& provider = call.adapter->config().name;
  tiermesh::tracing::Span span = StartSpan(call, /*stream=*/false, &*http);
  auto fail = [&](const absl::Status& status) {
    const absl::Status redacted = RedactStatus(status, secrets);
    span.RecordStatus(redacted);
    return redacted;
  };
  absl::StatusOr<tiermesh::http::HttpResponse> response = transport_->Fetch(*http);
  if (!response.ok()) return fail(MapTransportStatus(provider, response.status()));
  span.SetAttribute("http.response.status_code", response->status_code);
  HttpResponse resp{response->status_code, ToHeaders(response->headers), std::move(response->body)};
  const ParseContext context{EstimatePromptTokens(request), clock_()};
  absl::StatusOr<tiermesh::v1::GenerateResponse> out = call.adapter->ParseResponse(resp, context);
  if (!out.ok()) return fail(out.status());
  RecordUsage(out->usage(), &span);
  span.RecordStatus(absl::OkStatus());
  return out;
}

UpstreamStreamResult UpstreamClient::GenerateStream(
    const UpstreamCall& call, const tiermesh::v1::GenerateRequest& request,
    const std::function<bool(const StreamUpdate&)>& on_update) const {
  UpstreamStreamResult result;
  const std::vector<std::string> secrets = {call.key};
  const ParseContext context{EstimatePromptTokens(request), clock_()};
  tiermesh::tracing::Span span;  // started once the request is built
  int http_status = 0;
  auto finish = [&](absl::Status status, const StreamParser* parser) {
    result.status = RedactStatus(status, secrets);
    span.RecordStatus(result.status);
    if (http_status != 0) span.SetAttribute("http.response.status_code", http_status);
    if (result.first_token_at) span.AddEvent("first_token");
    if (parser != nullptr) {
      result.usage = parser->usage();
      result.finish_reason = parser->finish_reason();
      result.model = parser->model();
    } else {
      // Refused before generating (bad request, HTTP error answer): nothing
      // was generated, and providers do not bill refused requests.
      result.usage = MakeUsage(0, 0, 0, /*estimated=*/false);
    }
    RecordUsage(result.usage, &span);
    return result;
  };

  absl::StatusOr<tiermesh::http::HttpRequest> http = MakeHttpRequest(call, request, true);
  if (!http.ok()) return finish(http.status(), nullptr);
  const std::string& provider = call.adapter->config().name;
  span = StartSpan(call, /*stream=*/true, &*http);
  std::unique_ptr<StreamParser> parser = call.adapter->NewStreamParser(context);

  Headers head_headers;
  std::string error_body;
  tiermesh::http::SseDecoder decoder;
  absl::Status stream_error;  // first error from the parser or decoder
  bool callback_cancelled = false;

  auto deliver = [&](const absl::StatusOr<StreamUpdate>& update) -> bool {
    if (!update.ok()) {
      stream_error = update.status();
      return false;
    }
    if (update->has_delta()) {
      if (!result.first_token_at) result.first_token_at = clock_();
      result.any_output = true;
    }
    if (update->has_delta() || update->complete || update->usage_updated ||
        update->finish_reason_set) {
      if (!on_update(*update)) {
        callback_cancelled = true;
        return false;
      }
    }
    return true;
  };

  tiermesh::http::HttpStreamCallbacks callbacks;
  callbacks.on_head = [&](const tiermesh::http::HttpResponseHead& head) {
    http_status = head.status_code;
    head_headers = ToHeaders(head.headers);
    return true;
  };
  callbacks.on_body = [&](absl::string_view chunk) {
    if (http_status < 200 || http_status >= 300) {
      const size_t room = kMaxErrorBodyBytes - std::min(kMaxErrorBodyBytes, error_body.size());
      error_body.append(chunk.data(), std::min(room, chunk.size()));
      return true;
    }
    bool keep_going = true;
    absl::Status fed = decoder.Feed(chunk, [&](tiermesh::http::SseEvent&& event) {
      if (!keep_going) return;
      keep_going = deliver(parser->OnEvent(event));
    });
    if (!fed.ok() && stream_error.ok()) {
      stream_error = WithReason(absl::UnavailableError(absl::StrCat(
                                    provider, ": malformed event stream: ", fed.message())),
                                kReasonMalformed);
      return false;
    }
    return keep_going;
  };

  absl::Status sent = transport_->Send(*http, callbacks);
  if (!stream_error.ok()) return finish(stream_error, parser.get());
  if (callback_cancelled) {
    return finish(MapTransportFailure(provider, TransportFailure::kCancelled,
                                      "the caller stopped the stream"),
                  parser.get());
  }
  if (!sent.ok()) return finish(MapTransportStatus(provider, sent), parser.get());
  if (http_status < 200 || http_status >= 300) {
    HttpResponse resp{http_status, head_headers, error_body};
    return finish(call.adapter->MapError(resp, clock_()), nullptr);
  }
  if (absl::Status done = decoder.Finish(); !done.ok()) {
    // The body ended inside an event: a cut.
    return finish(WithReason(absl::UnavailableError(
                                 absl::StrCat(provider, ": upstream stream ended inside an event")),
                             kReasonStreamCut),
                  parser.get());
  }
  absl::StatusOr<StreamUpdate> last = parser->OnEnd();
  if (!deliver(last)) {
    if (!stream_error.ok()) return finish(stream_error, parser.get());
    return finish(MapTransportFailure(provider, TransportFailure::kCancelled,
                                      "the caller stopped the stream"),
                  parser.get());
  }
  return finish(absl::OkStatus(), parser.get());
}

}  // namespace tiermesh::cloud
