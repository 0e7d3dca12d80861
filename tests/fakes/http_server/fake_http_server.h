// A loopback HTTP/1.1 server for tests: the stand-in for llama-server, cloud
// providers and OTLP collectors. The test supplies a handler that sees each
// request (method, path, headers, body) and answers through a responder that
// can send a buffered response, or stream one (chunked, with a length, or
// until close) with delays, stall, cut the connection mid-body or reset it.
// Every request is recorded, with the id of the TCP connection it came on.
//
//   ASSERT_OK_AND_ASSIGN(auto server, FakeHttpServer::Start(
//       [](const FakeHttpRequest& request, FakeHttpResponder& responder) {
//         if (request.path == "/health") { responder.Respond(200, "ok"); return; }
//         responder.StartChunked(200, {{"Content-Type", "text/event-stream"}});
//         responder.Write("data: {\"x\":1}\n\n");
//         responder.Sleep(absl::Milliseconds(20));
//         responder.Write("data: [DONE]\n\n");
//       }));                                  // returning finishes the response
//   Fetch(server->base_url() + "/v1/chat/completions") ...
//   EXPECT_EQ(server->requests()[0].method, "POST");
//
// Threads: one accept thread and one thread per connection; handlers of
// different connections run concurrently (make shared state thread-safe).
// Keep-alive and pipelining work; "Expect: 100-continue" and chunked request
// bodies are understood. The server binds 127.0.0.1 on an ephemeral port.
//
// Stopping: Stop() (also run by the destructor) wakes every responder call
// that waits (Sleep, Stall, WaitForClientClose, a blocked Write) and joins all
// threads, so it cannot hang on a stalled handler - provided the handler
// blocks only through the responder (or checks responder.stopping()).
#ifndef TIERMESH_TESTS_FAKES_HTTP_SERVER_FAKE_HTTP_SERVER_H_
#define TIERMESH_TESTS_FAKES_HTTP_SERVER_FAKE_HTTP_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace tiermesh::testing {

using FakeHttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct FakeHttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as on the request line: "/v1/x?y=1"
  std::string path;    // "/v1/x"
  std::string query;   // "y=1" ("" if none)
  FakeHttpHeaders headers;
  std::string body;             // de-chunked when sent chunked
  int connection_id = 0;        // 1, 2, ... in accept order
  int index_on_connection = 0;  // 0 for the first request on its connection

  // First header called `name` (ASCII case-insensitive).
  absl::optional<std::string> Header(absl::string_view name) const;
};

class FakeHttpServer;

// How a handler answers. Every call returns false once the connection is
// unusable (client gone, connection cut by the handler, or server stopping);
// a streaming handler should then return.
class FakeHttpResponder {
 public:
  FakeHttpResponder(const FakeHttpResponder&) = delete;
  FakeHttpResponder& operator=(const FakeHttpResponder&) = delete;

  // A complete response with Content-Length.
  bool Respond(int status, absl::string_view body, const FakeHttpHeaders& headers = {});

  // Starts a streamed response; send the body with Write().
  // Transfer-Encoding: chunked; returning from the handler (or Finish) sends
  // the last chunk, so leaving it out needs CloseConnection().
  bool StartChunked(int status, const FakeHttpHeaders& headers = {});
  // Content-Length: `content_length`; writing less and returning closes the
  // connection (a truncated body the client can detect).
  bool StartWithLength(int status, size_t content_length, const FakeHttpHeaders& headers = {});
  // No length, "Connection: close": the body ends when the connection closes.
  bool StartUntilClose(int status, const FakeHttpHeaders& headers = {});

  // Sends body bytes (as one chunk when chunked; empty writes send nothing).
  bool Write(absl::string_view data);
  // Ends the body: the terminating chunk, or closes an until-close stream.
  bool Finish();
  // Sends exactly `bytes`, no framing (for malformed responses). The
  // connection is closed after the handler returns.
  bool WriteRaw(absl::string_view bytes);

  // Waits `duration`; false (early) when the server stops.
  bool Sleep(absl::Duration duration);
  // Sends nothing and waits until the client closes the connection (true) or
  // the timeout passes / the server stops (false). Bytes the client sends
  // meanwhile are kept for the next request.
  bool WaitForClientClose(absl::Duration timeout = absl::InfiniteDuration());
  // A stalled upstream: waits until the client goes away or the server stops.
  void Stall() { WaitForClientClose(); }

  // Ends the connection now with a FIN (mid-body if a body was started).
  void CloseConnection();
  // Ends the connection now with a TCP RST.
  void ResetConnection();

  bool stopping() const;
  const FakeHttpRequest& request() const { return request_; }

 private:
  friend class FakeHttpServer;
  enum class State { kNone, kChunked, kLength, kUntilClose, kRaw, kDone, kClosed };

  FakeHttpResponder(FakeHttpServer* server, int fd, std::string* inbound,
                    const FakeHttpRequest& request)
      : server_(server), fd_(fd), inbound_(inbound), request_(request) {}
  bool SendHead(int status, const FakeHttpHeaders& headers, absl::string_view framing);
  bool SendAll(absl::string_view bytes);
  // Runs after the handler returned: completes or closes what it left open.
  // Returns whether the connection can serve another request.
  bool Complete();

  FakeHttpServer* server_;
  int fd_;
  std::string* inbound_;
  const FakeHttpRequest& request_;
  State state_ = State::kNone;
  size_t length_left_ = 0;
  bool broken_ = false;
};

using FakeHttpHandler = std::function<void(const FakeHttpRequest&, FakeHttpResponder&)>;

class FakeHttpServer {
 public:
  // Binds 127.0.0.1:0 and starts serving with `handler`.
  static absl::StatusOr<std::unique_ptr<FakeHttpServer>> Start(FakeHttpHandler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port>"
  std::string base_url() const;

  // Replaces the handler for requests that arrive from now on.
  void SetHandler(FakeHttpHandler handler);

  // Requests received so far (recorded before the handler runs).
  std::vector<FakeHttpRequest> requests() const;
  // Waits until at least `count` requests were received.
  bool WaitForRequests(size_t count, absl::Duration timeout) const;
  // TCP connections accepted so far.
  int connection_count() const;
  // Connections that have ended (closed by either side).
  int closed_connection_count() const;
  bool WaitForClosedConnections(int count, absl::Duration timeout) const;

  // Stops accepting (the listening socket is closed, so new connections are refused rather
  // than left waiting in the backlog), wakes waiting responders, joins every thread. Idempotent.
  void Stop();

 private:
  friend class FakeHttpResponder;
  struct Connection {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  FakeHttpServer(FakeHttpHandler handler, int listen_fd, int port, int stop_read, int stop_write);
  void AcceptLoop();
  void ServeConnection(int fd, int id);
  // Waits for `events` on `fd` (or the stop signal). Returns the revents of
  // fd, 0 on timeout, -1 when stopping.
  int PollFd(int fd, short events, absl::Duration timeout) const;
  // Reads more bytes into `buffer`; false on EOF, error or stop.
  bool ReadMore(int fd, std::string* buffer) const;
  bool ReadRequest(int fd, std::string* buffer, FakeHttpRequest* request);

  int listen_fd_;  // -1 once Stop() closed it (written only after the accept thread ended)
  const int port_;
  const int stop_read_;
  const int stop_write_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;

  // std::mutex rather than absl::Mutex so that ThreadSanitizer (which cannot
  // see inside the distribution's libabsl) understands the locking.
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // requests_ or closed count grew
  // Guarded by mu_:
  FakeHttpHandler handler_;
  std::vector<FakeHttpRequest> requests_;
  std::vector<Connection> connections_;
  int connection_count_ = 0;
  int closed_connection_count_ = 0;
  bool stopped_ = false;
};

}  // namespace tiermesh::testing

#endif  // TIERMESH_TESTS_FAKES_HTTP_SERVER_FAKE_HTTP_SERVER_H_
