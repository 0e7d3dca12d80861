#include "services/common/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace tiermesh::http {

absl::string_view HttpMethodName(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return "GET";
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kDelete:
      return "DELETE";
  }
  return "UNKNOWN";
}

absl::optional<std::string> FindHeader(const HttpHeaders& headers, absl::string_view name) {
  for (const HttpHeader& header : headers) {
    if (absl::EqualsIgnoreCase(header.name, name)) return header.value;
  }
  return absl::nullopt;
}

absl::StatusCode HttpStatusToCode(int http_status) {
  if (http_status >= 200 && http_status < 300) return absl::StatusCode::kOk;
  switch (http_status) {
    case 400:
    case 413:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    case 409:
      return absl::StatusCode::kAborted;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 499:
      return absl::StatusCode::kCancelled;
    case 501:
      return absl::StatusCode::kUnimplemented;
    case 502:
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      break;
  }
  if (http_status >= 500 && http_status < 600) return absl::StatusCode::kInternal;
  if (http_status >= 400 && http_status < 500) return absl::StatusCode::kFailedPrecondition;
  return absl::StatusCode::kUnknown;
}

std::string RedactUrl(absl::string_view url) {
  absl::string_view rest = url;
  std::string out;
  const size_t scheme_end = rest.find("://");
  if (scheme_end != absl::string_view::npos) {
    absl::StrAppend(&out, rest.substr(0, scheme_end + 3));
    rest.remove_prefix(scheme_end + 3);
  }
  const size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  absl::string_view authority = rest.substr(0, authority_end);
  const size_t at = authority.rfind('@');
  if (at != absl::string_view::npos) authority.remove_prefix(at + 1);  // drop user:password@
  absl::StrAppend(&out, authority);
  rest.remove_prefix(authority_end);
  const size_t path_end = std::min(rest.find_first_of("?#"), rest.size());
  absl::StrAppend(&out, rest.substr(0, path_end));
  return out;
}

absl::StatusOr<HttpResponse> HttpTransport::Fetch(const HttpRequest& request) {
  HttpResponse response;
  bool too_big = false;
  HttpStreamCallbacks callbacks;
  callbacks.on_head = [&](const HttpResponseHead& head) {
    response.status_code = head.status_code;
    response.headers = head.headers;
    // Fail before reading a body that is announced as too big.
    uint64_t length = 0;
    absl::optional<std::string> content_length = head.Header("content-length");
    if (content_length.has_value() && absl::SimpleAtoi(*content_length, &length) &&
        length > request.max_response_bytes) {
      too_big = true;
      return false;
    }
    return true;
  };
  callbacks.on_body = [&](absl::string_view chunk) {
    if (response.body.size() + chunk.size() > request.max_response_bytes) {
      too_big = true;
      return false;
    }
    response.body.append(chunk.data(), chunk.size());
    return true;
  };
  absl::Status status = Send(request, callbacks);
  if (too_big) {
    return absl::ResourceExhaustedError(absl::StrCat(
        HttpMethodName(request.method), " ", RedactUrl(request.url),
        ": response body exceeds max_response_bytes (", request.max_response_bytes, " bytes)"));
  }
  if (!status.ok()) return status;
  return response;
}

namespace {

absl::Status EnsureCurlGlobalInit() {
  // Thread-safe one-time initialisation; libcurl stays initialised for the
  // life of the process (curl_global_cleanup at exit buys nothing).
  static const CURLcode kInitResult = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (kInitResult != CURLE_OK) {
    return absl::InternalError(
        absl::StrCat("curl_global_init failed: ", curl_easy_strerror(kInitResult)));
  }
  return absl::OkStatus();
}

absl::StatusCode CurlCodeToStatusCode(CURLcode code) {
  switch (code) {
    case CURLE_URL_MALFORMAT:
      return absl::StatusCode::kInvalidArgument;
    // The scheme is checked before sending, so this is a server that answered
    // with something other than HTTP ("Received HTTP/0.9 when not allowed").
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP_RETURNED_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_PROXY:
      return absl::StatusCode::kUnavailable;
    case CURLE_OPERATION_TIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
      return absl::StatusCode::kResourceExhausted;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_WRITE_ERROR:
      return absl::StatusCode::kCancelled;
    default:
      return absl::StatusCode::kUnknown;
  }
}

// Removes anything secret that might have slipped into an error text: the
// full URL (query, credentials) and every header value.
std::string Scrub(std::string message, const HttpRequest& request) {
  const std::string redacted = RedactUrl(request.url);
  if (!request.url.empty() && request.url != redacted) {
    message = absl::StrReplaceAll(message, {{request.url, redacted}});
  }
  const size_t query = request.url.find_first_of("?#");
  if (query != std::string::npos && request.url.size() - query > 1) {
    message = absl::StrReplaceAll(
        message, {{absl::string_view(request.url).substr(query + 1), "<redacted>"}});
  }
  for (const HttpHeader& header : request.headers) {
    // Values this short are not secrets, and replacing them would garble text.
    if (header.value.size() >= 4) {
      message = absl::StrReplaceAll(message, {{header.value, "<redacted>"}});
    }
  }
  return message;
}

absl::Status ValidateRequest(const HttpRequest& request) {
  if (request.url.empty()) return absl::InvalidArgumentError("HTTP request without a URL");
  if (!absl::StartsWithIgnoreCase(request.url, "http://") &&
      !absl::StartsWithIgnoreCase(request.url, "https://")) {
    return absl::InvalidArgumentError("the URL scheme must be http or https");
  }
  for (const HttpHeader& header : request.headers) {
    if (header.name.empty() || header.name.find_first_of(":\r\n") != std::string::npos ||
        header.name.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("HTTP request header with an invalid name");
    }
    if (header.value.find_first_of("\r\n") != std::string::npos ||
        header.value.find('\0') != std::string::npos) {
      // Name the header, never its value.
      return absl::InvalidArgumentError(absl::StrCat("HTTP request header '", header.name,
                                                     "' has a line break or NUL in its value"));
    }
  }
  return absl::OkStatus();
}

int64_t CeilMillis(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  return absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)));
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// A multi handle with one easy handle: the transfer runs through the multi
// interface so that the calling thread can wait on the socket and still be
// woken at once by a cancellation (curl_multi_wakeup). The connection cache
// lives in the multi handle, so reusing the pair reuses the connection.
struct CurlHandle {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  CurlHandle() = default;
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
  ~CurlHandle() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
};

// Per-transfer state handed to the libcurl callbacks.
struct Transfer {
  enum class Abort { kNone, kByCallback };

  const HttpStreamCallbacks* callbacks = nullptr;
  CURL* easy = nullptr;
  HttpResponseHead head;
  bool head_delivered = false;
  Abort abort = Abort::kNone;
  absl::Time last_activity;

  bool DeliverHead() {
    head_delivered = true;
    if (head.status_code == 0) {
      long code = 0;  // NOLINT(runtime/int): libcurl's type
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
      head.status_code = static_cast<int>(code);
    }
    if (callbacks->on_head && !callbacks->on_head(head)) {
      abort = Abort::kByCallback;
      return false;
    }
    return true;
  }
};

size_t HeaderCallback(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  transfer->last_activity = absl::Now();
  absl::string_view line(data, bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (transfer->head_delivered) return bytes;  // trailers: not part of the head
  if (absl::StartsWith(line, "HTTP/")) {
    // A new status line (after a 1xx, a new block starts): reset.
    transfer->head = HttpResponseHead();
    const size_t space = line.find(' ');
    int code = 0;
    if (space != absl::string_view::npos && absl::SimpleAtoi(line.substr(space + 1, 3), &code)) {
      transfer->head.status_code = code;
    }
    return bytes;
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) return bytes;
  transfer->head.headers.push_back(
      HttpHeader{std::string(absl::StripAsciiWhitespace(line.substr(0, colon))),
                 std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)))});
  return bytes;
}

size_t WriteCallback(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  transfer->last_activity = absl::Now();
  if (!transfer->head_delivered && !transfer->DeliverHead()) return 0;
  if (transfer->callbacks->on_body &&
      !transfer->callbacks->on_body(absl::string_view(data, bytes))) {
    transfer->abort = Transfer::Abort::kByCallback;
    return 0;  // != bytes: libcurl stops with CURLE_WRITE_ERROR
  }
  return bytes;
}

class CurlHttpTransport final : public HttpTransport {
 public:
  explicit CurlHttpTransport(CurlTransportOptions options) : options_(std::move(options)) {}
  ~CurlHttpTransport() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle_.clear();  // easy handles go before the share they use
    }
    if (share_ != nullptr) curl_share_cleanup(share_);
  }

  absl::Status Init() {
    share_ = curl_share_init();
    if (share_ == nullptr) return absl::InternalError("curl_share_init failed");
    // DNS answers and TLS sessions are shared by all handles; connections are
    // not (libcurl's shared connection cache is not safe across threads), they
    // stay with the pooled handle instead.
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlHttpTransport::LockShare);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlHttpTransport::UnlockShare);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return absl::OkStatus();
  }

  absl::Status Send(const HttpRequest& request, const HttpStreamCallbacks& callbacks) override;

 private:
  static void LockShare(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<CurlHttpTransport*>(user)->share_locks_[LockIndex(data)].lock();
  }
  static void UnlockShare(CURL*, curl_lock_data data, void* user) {
    static_cast<CurlHttpTransport*>(user)->share_locks_[LockIndex(data)].unlock();
  }
  static size_t LockIndex(curl_lock_data data) {
    const auto index = static_cast<size_t>(data);
    return index < CURL_LOCK_DATA_LAST ? index : 0;
  }

  absl::StatusOr<std::unique_ptr<CurlHandle>> Acquire();
  void Release(std::unique_ptr<CurlHandle> handle);
  absl::Status Configure(CURL* easy, const HttpRequest& request, absl::Time now,
                         curl_slist* headers, Transfer* transfer, char* error_buffer);

  const CurlTransportOptions options_;
  CURLSH* share_ = nullptr;
  // std::mutex rather than absl::Mutex: ThreadSanitizer cannot see inside the
  // distribution's (uninstrumented) libabsl.
  std::array<std::mutex, CURL_LOCK_DATA_LAST> share_locks_;
  std::mutex mu_;
  std::vector<std::unique_ptr<CurlHandle>> idle_;  // guarded by mu_
};

absl::StatusOr<std::unique_ptr<CurlHandle>> CurlHttpTransport::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      // Last in, first out: the most recently used handle has the warmest
      // connection.
      std::unique_ptr<CurlHandle> handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  auto handle = std::make_unique<CurlHandle>();
  handle->multi = curl_multi_init();
  handle->easy = curl_easy_init();
  if (handle->multi == nullptr || handle->easy == nullptr) {
    return absl::ResourceExhaustedError("cannot create a libcurl handle");
  }
  return handle;
}

void CurlHttpTransport::Release(std::unique_ptr<CurlHandle> handle) {
  // Clears the options (and the pointers into the finished request) but keeps
  // the multi handle's live connections.
  curl_easy_reset(handle->easy);
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_idle_handles) idle_.push_back(std::move(handle));
}

absl::Status CurlHttpTransport::Configure(CURL* easy, const HttpRequest& request, absl::Time now,
                                          curl_slist* headers, Transfer* transfer,
                                          char* error_buffer) {
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode result) {
    if (rc == CURLE_OK) rc = result;
  };
  set(curl_easy_setopt(easy, CURLOPT_SHARE, share_));
  set(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer));
  set(curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()));
  set(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
  set(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L));
  set(curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L));
  set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L));
  set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L));
  if (!options_.ca_bundle_path.empty()) {
    set(curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_bundle_path.c_str()));
  }
  if (options_.proxy.has_value()) {
    set(curl_easy_setopt(easy, CURLOPT_PROXY, options_.proxy->c_str()));
  }
  set(curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str()));
  switch (request.method) {
    case HttpMethod::kGet:
      set(curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L));
      break;
    case HttpMethod::kPost:
      set(curl_easy_setopt(easy, CURLOPT_POST, 1L));
      break;
    case HttpMethod::kDelete:
      set(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE"));
      break;
  }
  if (request.method == HttpMethod::kPost || !request.body.empty()) {
    set(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size())));
    set(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data()));
  }
  set(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers));
  // Connect timeout: the request's, never beyond its deadline. Zero would
  // mean libcurl's default (300 s).
  absl::Duration connect = std::min(request.connect_timeout, request.deadline - now);
  if (connect != absl::InfiniteDuration()) {
    set(curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                         static_cast<long>(std::max<int64_t>(1, CeilMillis(connect)))));  // NOLINT
  }
  set(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &HeaderCallback));
  set(curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer));
  set(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &WriteCallback));
  set(curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer));
  if (rc != CURLE_OK) {
    return absl::Status(
        CurlCodeToStatusCode(rc) == absl::StatusCode::kUnknown ? absl::StatusCode::kInternal
                                                               : CurlCodeToStatusCode(rc),
        absl::StrCat("cannot configure the HTTP request: ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

absl::Status CurlHttpTransport::Send(const HttpRequest& request,
                                     const HttpStreamCallbacks& callbacks) {
  const std::string what =
      absl::StrCat(HttpMethodName(request.method), " ", RedactUrl(request.url));
  if (absl::Status status = ValidateRequest(request); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  }
  if (request.cancel != nullptr && request.cancel->IsCancelled()) {
    return absl::CancelledError(absl::StrCat(what, ": cancelled before it was sent"));
  }
  const absl::Time start = absl::Now();
  if (start >= request.deadline) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": deadline passed before it was sent"));
  }

  // Header list. "Expect:" stops libcurl from waiting for a "100 Continue"
  // before sending a large body (servers that never send one cost a second).
  SlistPtr header_list;
  bool has_expect = false;
  for (const HttpHeader& header : request.headers) {
    has_expect = has_expect || absl::EqualsIgnoreCase(header.name, "Expect");
    // "Name;" is libcurl's way of sending a header with an empty value.
    const std::string line = header.value.empty() ? absl::StrCat(header.name, ";")
                                                  : absl::StrCat(header.name, ": ", header.value);
    curl_slist* appended = curl_slist_append(header_list.get(), line.c_str());
    if (appended == nullptr) return absl::ResourceExhaustedError("cannot build HTTP headers");
    header_list.release();
    header_list.reset(appended);
  }
  if (!has_expect) {
    curl_slist* appended = curl_slist_append(header_list.get(), "Expect:");
    if (appended == nullptr) return absl::ResourceExhaustedError("cannot build HTTP headers");
    header_list.release();
    header_list.reset(appended);
  }

  absl::StatusOr<std::unique_ptr<CurlHandle>> acquired = Acquire();
  if (!acquired.ok()) return acquired.status();
  std::unique_ptr<CurlHandle> handle = std::move(acquired).value();

  Transfer transfer;
  transfer.callbacks = &callbacks;
  transfer.easy = handle->easy;
  transfer.last_activity = start;
  char error_buffer[CURL_ERROR_SIZE] = {0};
  absl::Status status =
      Configure(handle->easy, request, start, header_list.get(), &transfer, error_buffer);
  if (!status.ok()) {
    Release(std::move(handle));
    return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
  }
  if (CURLMcode mc = curl_multi_add_handle(handle->multi, handle->easy); mc != CURLM_OK) {
    Release(std::move(handle));
    return absl::InternalError(absl::StrCat(what, ": ", curl_multi_strerror(mc)));
  }

  bool finished = false;
  CURLcode result = CURLE_OK;
  {
    // Wakes the poll below at once when the request is cancelled.
    CancellationToken::Registration wake;
    if (request.cancel != nullptr) {
      CURLM* multi = handle->multi;
      wake = request.cancel->OnCancel([multi] { curl_multi_wakeup(multi); });
    }
    while (true) {
      int running = 0;
      if (CURLMcode mc = curl_multi_perform(handle->multi, &running); mc != CURLM_OK) {
        status = absl::InternalError(absl::StrCat(what, ": ", curl_multi_strerror(mc)));
        break;
      }
      if (running == 0) {
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(handle->multi, &queued)) {
          if (msg->msg == CURLMSG_DONE) result = msg->data.result;
        }
        finished = true;
        break;
      }
      if (request.cancel != nullptr && request.cancel->IsCancelled()) {
        status = absl::CancelledError(absl::StrCat(what, ": cancelled"));
        break;
      }
      const absl::Time now = absl::Now();
      if (now >= request.deadline) {
        status = absl::DeadlineExceededError(
            absl::StrCat(what, ": deadline exceeded after ", absl::FormatDuration(now - start)));
        break;
      }
      absl::Duration wait = std::min(absl::Seconds(1), request.deadline - now);
      if (request.idle_timeout != absl::InfiniteDuration()) {
        const absl::Duration silent = now - transfer.last_activity;
        if (silent >= request.idle_timeout) {
          status = absl::UnavailableError(
              absl::StrCat(what, ": stalled: no bytes received for ",
                           absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(1))),
                           " (idle timeout ", absl::FormatDuration(request.idle_timeout), ")"));
          break;
        }
        wait = std::min(wait, request.idle_timeout - silent);
      }
      const int wait_ms = static_cast<int>(std::max<int64_t>(1, CeilMillis(wait)));
      if (CURLMcode mc = curl_multi_poll(handle->multi, nullptr, 0, wait_ms, nullptr);
          mc != CURLM_OK) {
        status = absl::InternalError(absl::StrCat(what, ": ", curl_multi_strerror(mc)));
        break;
      }
    }
  }
  // Removing an unfinished transfer closes its connection: the server sees
  // the client go away, which is how llama-server learns to stop generating.
  curl_multi_remove_handle(handle->multi, handle->easy);
  Release(std::move(handle));

  if (!finished) return status;
  if (transfer.abort == Transfer::Abort::kByCallback) {
    return absl::CancelledError(absl::StrCat(what, ": aborted by the response callback"));
  }
  if (result == CURLE_OK) {
    if (!transfer.head_delivered && !transfer.DeliverHead()) {
      return absl::CancelledError(absl::StrCat(what, ": aborted by the response callback"));
    }
    return absl::OkStatus();
  }
  absl::StatusCode code = CurlCodeToStatusCode(result);
  std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(result);
  if (result == CURLE_OPERATION_TIMEDOUT && absl::Now() < request.deadline) {
    // Only the connect timeout is libcurl's; the deadline is enforced above.
    code = absl::StatusCode::kUnavailable;
    detail = absl::StrCat("connect timed out: ", detail);
  }
  return absl::Status(code, Scrub(absl::StrCat(what, ": ", detail), request));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTransport>> NewCurlHttpTransport(CurlTransportOptions options) {
  absl::Status status = EnsureCurlGlobalInit();
  if (!status.ok()) return status;
  auto transport = std::make_unique<CurlHttpTransport>(std::move(options));
  status = transport->Init();
  if (!status.ok()) return status;
  return std::unique_ptr<HttpTransport>(std::move(transport));
}

absl::StatusOr<std::unique_ptr<HttpTransport>> NewLoopbackHttpTransport() {
  CurlTransportOptions options;
  options.proxy = std::string();
  return NewCurlHttpTransport(std::move(options));
}

}  // namespace tiermesh::http
