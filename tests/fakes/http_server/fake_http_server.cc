#include "tests/fakes/http_server/fake_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tiermesh::testing {
namespace {

constexpr size_t kMaxHeaderBytes = 64 << 10;
constexpr size_t kMaxBodyBytes = 256 << 20;

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

int ToPollMillis(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return -1;
  if (timeout <= absl::ZeroDuration()) return 0;
  const int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
  return ms > 1000000000 ? 1000000000 : static_cast<int>(ms);
}

// condition_variable waits need a finite duration.
std::chrono::nanoseconds ToChrono(absl::Duration timeout) {
  return absl::ToChronoNanoseconds(std::min(timeout, absl::Hours(24)));
}

void SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

}  // namespace

absl::optional<std::string> FakeHttpRequest::Header(absl::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return value;
  }
  return absl::nullopt;
}

// ---------------------------------------------------------------------------
// FakeHttpResponder

bool FakeHttpResponder::stopping() const { return server_->stopping_.load(); }

bool FakeHttpResponder::SendAll(absl::string_view bytes) {
  if (broken_ || fd_ < 0) return false;
  while (!bytes.empty()) {
    const ssize_t sent = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent > 0) {
      bytes.remove_prefix(static_cast<size_t>(sent));
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      // The client does not read fast enough: wait, unless the server stops.
      if (server_->PollFd(fd_, POLLOUT, absl::InfiniteDuration()) < 0) {
        broken_ = true;
        return false;
      }
      continue;
    }
    broken_ = true;  // EPIPE / ECONNRESET: the client is gone
    return false;
  }
  return true;
}

bool FakeHttpResponder::SendHead(int status, const FakeHttpHeaders& headers,
                                 absl::string_view framing) {
  if (state_ != State::kNone) return false;  // one response per request
  std::string head = absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&head, name, ": ", value, "\r\n");
  absl::StrAppend(&head, framing, "\r\n");
  return SendAll(head);
}

bool FakeHttpResponder::Respond(int status, absl::string_view body,
                                const FakeHttpHeaders& headers) {
  std::string framing = absl::StrCat("Content-Length: ", body.size(), "\r\n");
  const absl::optional<std::string> connection = request_.Header("Connection");
  if (connection.has_value() && absl::EqualsIgnoreCase(*connection, "close")) {
    absl::StrAppend(&framing, "Connection: close\r\n");
  }
  if (!SendHead(status, headers, framing)) return false;
  state_ = State::kDone;
  return SendAll(body);
}

bool FakeHttpResponder::StartChunked(int status, const FakeHttpHeaders& headers) {
  if (!SendHead(status, headers, "Transfer-Encoding: chunked\r\n")) return false;
  state_ = State::kChunked;
  return true;
}

bool FakeHttpResponder::StartWithLength(int status, size_t content_length,
                                        const FakeHttpHeaders& headers) {
  if (!SendHead(status, headers, absl::StrCat("Content-Length: ", content_length, "\r\n"))) {
    return false;
  }
  state_ = State::kLength;
  length_left_ = content_length;
  return true;
}

bool FakeHttpResponder::StartUntilClose(int status, const FakeHttpHeaders& headers) {
  if (!SendHead(status, headers, "Connection: close\r\n")) return false;
  state_ = State::kUntilClose;
  return true;
}

bool FakeHttpResponder::Write(absl::string_view data) {
  switch (state_) {
    case State::kChunked:
      if (data.empty()) return !broken_;  // an empty chunk would end the body
      return SendAll(absl::StrCat(absl::Hex(data.size()), "\r\n", data, "\r\n"));
    case State::kLength:
      length_left_ -= std::min(length_left_, data.size());
      return SendAll(data);
    case State::kUntilClose:
    case State::kRaw:
      return SendAll(data);
    default:
      return false;  // no streamed response started (or it is finished)
  }
}

bool FakeHttpResponder::WriteRaw(absl::string_view bytes) {
  if (state_ == State::kClosed) return false;
  state_ = State::kRaw;
  return SendAll(bytes);
}

bool FakeHttpResponder::Finish() {
  switch (state_) {
    case State::kChunked:
      state_ = State::kDone;
      return SendAll("0\r\n\r\n");
    case State::kLength:
      state_ = length_left_ == 0 ? State::kDone : State::kLength;
      return length_left_ == 0 && !broken_;
    case State::kUntilClose:
    case State::kRaw:
      CloseConnection();
      return true;
    default:
      return false;
  }
}

bool FakeHttpResponder::Sleep(absl::Duration duration) {
  pollfd stop{server_->stop_read_, POLLIN, 0};
  const absl::Time end = absl::Now() + duration;
  while (true) {
    const absl::Duration left = end - absl::Now();
    if (left <= absl::ZeroDuration()) return !stopping();
    const int rc = poll(&stop, 1, ToPollMillis(left));
    if (rc > 0) return false;  // the stop pipe is readable: stopping
    if (rc < 0 && errno != EINTR) return false;
  }
}

bool FakeHttpResponder::WaitForClientClose(absl::Duration timeout) {
  if (fd_ < 0) return false;
  const absl::Time end =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (true) {
    const int revents = server_->PollFd(fd_, POLLIN | POLLRDHUP, end - absl::Now());
    if (revents < 0) return false;   // stopping
    if (revents == 0) return false;  // timed out
    if (revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
    char buffer[4096];
    const ssize_t got = recv(fd_, buffer, sizeof(buffer), 0);
    if (got == 0) return true;
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return true;  // ECONNRESET
    }
    inbound_->append(buffer, static_cast<size_t>(got));  // a pipelined request: keep it
  }
}

void FakeHttpResponder::CloseConnection() {
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
  state_ = State::kClosed;
  broken_ = true;
}

void FakeHttpResponder::ResetConnection() {
  if (fd_ >= 0) {
    // A zero linger time turns close() into a RST.
    linger option{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
    close(fd_);
    fd_ = -1;
  }
  state_ = State::kClosed;
  broken_ = true;
}

bool FakeHttpResponder::Complete() {
  if (broken_ || fd_ < 0) return false;
  switch (state_) {
    case State::kNone:
      Respond(500, "fake handler did not respond");
      break;
    case State::kChunked:
      Finish();
      break;
    case State::kLength:
      if (length_left_ > 0) return false;  // truncated body: closing is the only honest end
      break;
    case State::kUntilClose:
    case State::kRaw:
    case State::kClosed:
      return false;
    case State::kDone:
      break;
  }
  if (broken_) return false;
  const absl::optional<std::string> connection = request_.Header("Connection");
  return !(connection.has_value() && absl::EqualsIgnoreCase(*connection, "close"));
}

// ---------------------------------------------------------------------------
// FakeHttpServer

absl::StatusOr<std::unique_ptr<FakeHttpServer>> FakeHttpServer::Start(FakeHttpHandler handler) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 64) != 0) {
    const int error = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("bind/listen on 127.0.0.1:0: ", std::strerror(error)));
  }
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  SetNonBlocking(fd);
  int stop_pipe[2];
  if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    const int error = errno;
    close(fd);
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(error)));
  }
  std::unique_ptr<FakeHttpServer> server(new FakeHttpServer(
      std::move(handler), fd, ntohs(address.sin_port), stop_pipe[0], stop_pipe[1]));
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

FakeHttpServer::FakeHttpServer(FakeHttpHandler handler, int listen_fd, int port, int stop_read,
                               int stop_write)
    : listen_fd_(listen_fd),
      port_(port),
      stop_read_(stop_read),
      stop_write_(stop_write),
      handler_(std::move(handler)) {}

FakeHttpServer::~FakeHttpServer() {
  Stop();
  close(stop_read_);
  close(stop_write_);
}

std::string FakeHttpServer::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeHttpServer::SetHandler(FakeHttpHandler handler) {
  std::unique_lock<std::mutex> lock(mu_);
  handler_ = std::move(handler);
}

std::vector<FakeHttpRequest> FakeHttpServer::requests() const {
  std::unique_lock<std::mutex> lock(mu_);
  return requests_;
}

bool FakeHttpServer::WaitForRequests(size_t count, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, ToChrono(timeout), [&] { return requests_.size() >= count; });
}

int FakeHttpServer::connection_count() const {
  std::unique_lock<std::mutex> lock(mu_);
  return connection_count_;
}

int FakeHttpServer::closed_connection_count() const {
  std::unique_lock<std::mutex> lock(mu_);
  return closed_connection_count_;
}

bool FakeHttpServer::WaitForClosedConnections(int count, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return changed_.wait_for(lock, ToChrono(timeout),
                           [&] { return closed_connection_count_ >= count; });
}

void FakeHttpServer::Stop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true);
  // Never drained: the pipe stays readable, so every poll that includes it
  // (the accept loop, each connection, each Sleep) wakes up now and later.
  const char byte = 1;
  while (write(stop_write_, &byte, 1) < 0 && errno == EINTR) {
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  close(listen_fd_);
  listen_fd_ = -1;
  std::vector<Connection> connections;
  {
    std::unique_lock<std::mutex> lock(mu_);
    connections.swap(connections_);
  }
  for (Connection& connection : connections) connection.thread.join();
}

int FakeHttpServer::PollFd(int fd, short events, absl::Duration timeout) const {
  pollfd fds[2] = {{fd, events, 0}, {stop_read_, POLLIN, 0}};
  const absl::Time end =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  while (true) {
    const int rc = poll(fds, 2, ToPollMillis(end - absl::Now()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0 || fds[1].revents != 0) return -1;
    return rc == 0 ? 0 : fds[0].revents;
  }
}

void FakeHttpServer::AcceptLoop() {
  while (true) {
    if (PollFd(listen_fd_, POLLIN, absl::InfiniteDuration()) < 0) return;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;  // EAGAIN (a racing wakeup) or a client that left already
    // Every Write is meant to leave at once (streams are timed by the test),
    // and Nagle + delayed ACK would add 40 ms stalls.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::unique_lock<std::mutex> lock(mu_);
    // Reap the threads of connections that are over.
    std::vector<Connection> alive;
    for (Connection& connection : connections_) {
      if (connection.done->load()) {
        connection.thread.join();
      } else {
        alive.push_back(std::move(connection));
      }
    }
    connections_ = std::move(alive);
    const int id = ++connection_count_;
    auto done = std::make_shared<std::atomic<bool>>(false);
    connections_.push_back(Connection{std::thread([this, fd, id, done] {
                                        ServeConnection(fd, id);
                                        done->store(true);
                                      }),
                                      done});
  }
}

bool FakeHttpServer::ReadMore(int fd, std::string* buffer) const {
  while (true) {
    const int revents = PollFd(fd, POLLIN, absl::InfiniteDuration());
    if (revents < 0) return false;
    char chunk[16384];
    const ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
    if (got > 0) {
      buffer->append(chunk, static_cast<size_t>(got));
      return true;
    }
    if (got == 0) return false;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return false;
  }
}

// Reads one request from `buffer` (refilled from fd as needed). Returns false
// when the connection should end (EOF, stop, malformed request).
bool FakeHttpServer::ReadRequest(int fd, std::string* buffer, FakeHttpRequest* request) {
  size_t head_end;
  while ((head_end = buffer->find("\r\n\r\n")) == std::string::npos) {
    if (buffer->size() > kMaxHeaderBytes) return false;
    if (!ReadMore(fd, buffer)) return false;
  }
  const std::string head = buffer->substr(0, head_end);
  buffer->erase(0, head_end + 4);
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  std::vector<absl::string_view> request_line = absl::StrSplit(lines[0], ' ');
  if (request_line.size() != 3) return false;
  request->method = std::string(request_line[0]);
  request->target = std::string(request_line[1]);
  const size_t query = request->target.find('?');
  request->path = request->target.substr(0, query);
  request->query = query == std::string::npos ? "" : request->target.substr(query + 1);
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) return false;
    request->headers.emplace_back(
        std::string(absl::StripAsciiWhitespace(lines[i].substr(0, colon))),
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1))));
  }

  const absl::optional<std::string> expect = request->Header("Expect");
  if (expect.has_value() && absl::EqualsIgnoreCase(*expect, "100-continue")) {
    static constexpr absl::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (send(fd, kContinue.data(), kContinue.size(), MSG_NOSIGNAL) < 0) return false;
  }
  const absl::optional<std::string> encoding = request->Header("Transfer-Encoding");
  if (encoding.has_value() && absl::EqualsIgnoreCase(*encoding, "chunked")) {
    while (true) {
      size_t line_end;
      while ((line_end = buffer->find("\r\n")) == std::string::npos) {
        if (!ReadMore(fd, buffer)) return false;
      }
      uint64_t size = 0;
      const std::string size_text = buffer->substr(0, buffer->find_first_of(";\r"));
      if (!absl::SimpleHexAtoi(size_text, &size) || size > kMaxBodyBytes) return false;
      buffer->erase(0, line_end + 2);
      if (size == 0) {
        // Trailers (ignored) up to the blank line.
        while (true) {
          while ((line_end = buffer->find("\r\n")) == std::string::npos) {
            if (!ReadMore(fd, buffer)) return false;
          }
          buffer->erase(0, line_end + 2);
          if (line_end == 0) return true;
        }
      }
      while (buffer->size() < size + 2) {
        if (!ReadMore(fd, buffer)) return false;
      }
      request->body.append(*buffer, 0, size);
      buffer->erase(0, size + 2);
      if (request->body.size() > kMaxBodyBytes) return false;
    }
  }
  uint64_t length = 0;
  const absl::optional<std::string> content_length = request->Header("Content-Length");
  if (content_length.has_value() &&
      (!absl::SimpleAtoi(*content_length, &length) || length > kMaxBodyBytes)) {
    return false;
  }
  while (buffer->size() < length) {
    if (!ReadMore(fd, buffer)) return false;
  }
  request->body = buffer->substr(0, length);
  buffer->erase(0, length);
  return true;
}

void FakeHttpServer::ServeConnection(int fd, int id) {
  std::string inbound;
  for (int index = 0;; ++index) {
    FakeHttpRequest request;
    request.connection_id = id;
    request.index_on_connection = index;
    if (!ReadRequest(fd, &inbound, &request)) break;
    FakeHttpHandler handler;
    {
      std::unique_lock<std::mutex> lock(mu_);
      requests_.push_back(request);
      handler = handler_;
    }
    changed_.notify_all();
    FakeHttpResponder responder(this, fd, &inbound, request);
    if (handler) {
      handler(request, responder);
    } else {
      responder.Respond(404, "no handler");
    }
    const bool keep_alive = responder.Complete();
    if (responder.fd_ < 0) {
      fd = -1;  // reset: already closed
      break;
    }
    if (!keep_alive) break;
  }
  if (fd >= 0) {
    shutdown(fd, SHUT_RDWR);
    close(fd);
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    ++closed_connection_count_;
  }
  changed_.notify_all();
}

}  // namespace tiermesh::testing
