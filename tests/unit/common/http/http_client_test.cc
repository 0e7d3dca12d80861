// Tests of the libcurl HttpTransport against the loopback fake server.
#include "services/common/http/http_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/http/cancellation.h"
#include "services/common/status/status_matchers.h"
#include "tests/fakes/http_server/fake_http_server.h"

namespace tiermesh::http {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tiermesh::testing::FakeHttpRequest;
using ::tiermesh::testing::FakeHttpResponder;
using ::tiermesh::testing::FakeHttpServer;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

// A one-shot event. Not absl::Notification: the distribution's libabsl is not
// built for ThreadSanitizer, so the tsan preset could not see its ordering.
class Notification {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }
  bool HasBeenNotified() {
    std::lock_guard<std::mutex> lock(mu_);
    return notified_;
  }
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return notified_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Hermetic: never a proxy from the environment.
    ASSERT_OK_AND_ASSIGN(transport_, NewLoopbackHttpTransport());
  }

  void StartServer(tiermesh::testing::FakeHttpHandler handler) {
    ASSERT_OK_AND_ASSIGN(server_, FakeHttpServer::Start(std::move(handler)));
  }

  HttpRequest Request(absl::string_view path, HttpMethod method = HttpMethod::kGet) {
    HttpRequest request;
    request.method = method;
    request.url = absl::StrCat(server_->base_url(), path);
    request.deadline = absl::Now() + absl::Seconds(20);  // a hung test fails, not hangs
    return request;
  }

  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<FakeHttpServer> server_;
};

TEST_F(HttpClientTest, GetReturnsStatusHeadersAndBody) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.Respond(200, "hello", {{"X-Test", "yes"}, {"Content-Type", "text/plain"}});
  });
  ASSERT_OK_AND_ASSIGN(HttpResponse response, transport_->Fetch(Request("/v1/models?limit=2")));
  EXPECT_EQ(response.status_code, 200);
  EXPECT_EQ(response.body, "hello");
  EXPECT_EQ(response.Header("x-test"), absl::optional<std::string>("yes"));
  EXPECT_EQ(response.Header("content-type"), absl::optional<std::string>("text/plain"));
  EXPECT_EQ(response.Header("missing"), absl::nullopt);
  const std::vector<FakeHttpRequest> seen = server_->requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].path, "/v1/models");
  EXPECT_EQ(seen[0].query, "limit=2");
  EXPECT_EQ(seen[0].body, "");
}

TEST_F(HttpClientTest, PostSendsBodyAndHeadersWithoutExpectContinue) {
  StartServer([](const FakeHttpRequest& request, FakeHttpResponder& r) {
    r.Respond(201, absl::StrCat("got ", request.body.size()));
  });
  HttpRequest request = Request("/v1/chat/completions", HttpMethod::kPost);
  request.headers = {
      {"Authorization", "Bearer sk-secret"}, {"Content-Type", "application/json"}, {"X-Empty", ""}};
  request.body = std::string(100000, 'a');  // large enough for libcurl to want 100-continue
  const absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(HttpResponse response, transport_->Fetch(request));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(900));  // no 1 s Expect wait
  EXPECT_EQ(response.status_code, 201);
  EXPECT_EQ(response.body, "got 100000");
  const FakeHttpRequest seen = server_->requests().at(0);
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.body, request.body);
  EXPECT_EQ(seen.Header("authorization"), absl::optional<std::string>("Bearer sk-secret"));
  EXPECT_EQ(seen.Header("content-type"), absl::optional<std::string>("application/json"));
  EXPECT_EQ(seen.Header("x-empty"), absl::optional<std::string>(""));
  EXPECT_EQ(seen.Header("expect"), absl::nullopt);
  EXPECT_EQ(seen.Header("user-agent"), absl::optional<std::string>("tiermesh/0.1"));
}

TEST_F(HttpClientTest, PostWithEmptyBodyAndDelete) {
  StartServer(
      [](const FakeHttpRequest& request, FakeHttpResponder& r) { r.Respond(200, request.method); });
  ASSERT_OK_AND_ASSIGN(HttpResponse post, transport_->Fetch(Request("/a", HttpMethod::kPost)));
  EXPECT_EQ(post.body, "POST");
  ASSERT_OK_AND_ASSIGN(HttpResponse del, transport_->Fetch(Request("/a", HttpMethod::kDelete)));
  EXPECT_EQ(del.body, "DELETE");
  HttpRequest with_body = Request("/a", HttpMethod::kDelete);
  with_body.body = "{}";
  ASSERT_OK_AND_ASSIGN(HttpResponse del2, transport_->Fetch(with_body));
  EXPECT_EQ(del2.body, "DELETE");
  EXPECT_EQ(server_->requests().at(2).body, "{}");
}

TEST_F(HttpClientTest, ErrorStatusCodesAreResponsesNotErrors) {
  StartServer([](const FakeHttpRequest& request, FakeHttpResponder& r) {
    r.Respond(std::stoi(request.path.substr(1)), "{\"error\":\"x\"}", {{"Retry-After", "3"}});
  });
  for (int code : {400, 401, 404, 429, 500, 503}) {
    ASSERT_OK_AND_ASSIGN(HttpResponse response,
                         transport_->Fetch(Request(absl::StrCat("/", code))));
    EXPECT_EQ(response.status_code, code);
    EXPECT_EQ(response.body, "{\"error\":\"x\"}");
    EXPECT_EQ(response.Header("retry-after"), absl::optional<std::string>("3"));
  }
}

TEST_F(HttpClientTest, EmptyBodyStillDeliversTheHead) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(204, ""); });
  int heads = 0;
  int status = 0;
  HttpStreamCallbacks callbacks;
  callbacks.on_head = [&](const HttpResponseHead& head) {
    ++heads;
    status = head.status_code;
    return true;
  };
  callbacks.on_body = [&](absl::string_view) { return true; };
  ASSERT_THAT(transport_->Send(Request("/"), callbacks), IsOk());
  EXPECT_EQ(heads, 1);
  EXPECT_EQ(status, 204);
}

TEST_F(HttpClientTest, StreamingDeliversHeadFirstThenChunksInOrder) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200, {{"Content-Type", "text/event-stream"}});
    for (int i = 0; i < 5; ++i) {
      r.Write(absl::StrCat("data: ", i, "\n\n"));
      r.Sleep(absl::Milliseconds(20));
    }
  });
  std::vector<std::string> log;
  std::string body;
  HttpStreamCallbacks callbacks;
  callbacks.on_head = [&](const HttpResponseHead& head) {
    log.push_back(
        absl::StrCat("head ", head.status_code, " ", head.Header("content-type").value_or("?")));
    return true;
  };
  callbacks.on_body = [&](absl::string_view chunk) {
    if (body.empty()) log.push_back("first body");
    body.append(chunk.data(), chunk.size());
    return true;
  };
  ASSERT_THAT(transport_->Send(Request("/stream"), callbacks), IsOk());
  EXPECT_THAT(log, ElementsAre("head 200 text/event-stream", "first body"));
  EXPECT_EQ(body, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
}

TEST_F(HttpClientTest, UntilCloseBodyIsComplete) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartUntilClose(200);
    r.Write("part1 ");
    r.Write("part2");
  });
  ASSERT_OK_AND_ASSIGN(HttpResponse response, transport_->Fetch(Request("/")));
  EXPECT_EQ(response.body, "part1 part2");
}

TEST_F(HttpClientTest, HeadCallbackCanRefuseTheBody) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(500, "oops"); });
  bool body_called = false;
  HttpStreamCallbacks callbacks;
  callbacks.on_head = [](const HttpResponseHead& head) { return head.status_code == 200; };
  callbacks.on_body = [&](absl::string_view) {
    body_called = true;
    return true;
  };
  EXPECT_THAT(
      transport_->Send(Request("/"), callbacks),
      StatusIs(absl::StatusCode::kCancelled, HasSubstr("aborted by the response callback")));
  EXPECT_FALSE(body_called);
}

TEST_F(HttpClientTest, BodyCallbackReturningFalseAbortsAndClosesTheConnection) {
  Notification client_closed;
  StartServer([&](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    r.Write("first");
    if (r.WaitForClientClose(absl::Seconds(10))) client_closed.Notify();
  });
  HttpStreamCallbacks callbacks;
  callbacks.on_body = [](absl::string_view) { return false; };
  EXPECT_THAT(transport_->Send(Request("/"), callbacks),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("aborted")));
  EXPECT_TRUE(client_closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST_F(HttpClientTest, DeadlineAbortsAStalledResponse) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Stall(); });
  HttpRequest request = Request("/slow");
  request.deadline = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  EXPECT_THAT(transport_->Fetch(request),
              StatusIs(absl::StatusCode::kDeadlineExceeded,
                       AllOf(HasSubstr("GET http://127.0.0.1:"), HasSubstr("/slow"))));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_GE(elapsed, absl::Milliseconds(290));
  EXPECT_LT(elapsed, absl::Milliseconds(1500));
}

TEST_F(HttpClientTest, DeadlineAbortsMidStream) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    while (r.Write("tick ") && r.Sleep(absl::Milliseconds(20))) {
    }
  });
  HttpRequest request = Request("/");
  request.deadline = absl::Now() + absl::Milliseconds(300);
  int chunks = 0;
  HttpStreamCallbacks callbacks;
  callbacks.on_body = [&](absl::string_view) {
    ++chunks;
    return true;
  };
  EXPECT_THAT(transport_->Send(request, callbacks),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("deadline exceeded")));
  EXPECT_GT(chunks, 2);
}

TEST_F(HttpClientTest, DeadlineAlreadyPassedSendsNothing) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, "x"); });
  HttpRequest request = Request("/");
  request.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_THAT(transport_->Fetch(request),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("before it was sent")));
  EXPECT_EQ(server_->connection_count(), 0);
}

TEST_F(HttpClientTest, IdleTimeoutFailsAStalledStream) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    r.Write("data: first\n\n");
    r.Stall();
  });
  HttpRequest request = Request("/");
  request.idle_timeout = absl::Milliseconds(200);
  std::string body;
  HttpStreamCallbacks callbacks;
  callbacks.on_body = [&](absl::string_view chunk) {
    body.append(chunk.data(), chunk.size());
    return true;
  };
  const absl::Time start = absl::Now();
  EXPECT_THAT(transport_->Send(request, callbacks),
              StatusIs(absl::StatusCode::kUnavailable,
                       AllOf(HasSubstr("stalled"), HasSubstr("idle timeout 200ms"))));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  EXPECT_EQ(body, "data: first\n\n");
}

TEST_F(HttpClientTest, IdleTimeoutDoesNotFireWhileBytesFlow) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    for (int i = 0; i < 12; ++i) {
      r.Write(": keep-alive\n");
      r.Sleep(absl::Milliseconds(50));
    }
  });
  HttpRequest request = Request("/");
  request.idle_timeout = absl::Milliseconds(400);
  EXPECT_THAT(transport_->Fetch(request), IsOk());  // 600 ms in all, never 400 ms silent
}

TEST_F(HttpClientTest, CancellationFromAnotherThreadAbortsQuicklyAndClosesTheConnection) {
  Notification first_chunk_sent;
  Notification client_closed;
  StartServer([&](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    r.Write("data: 1\n\n");
    if (r.WaitForClientClose(absl::Seconds(10))) client_closed.Notify();
  });
  auto token = std::make_shared<CancellationToken>();
  HttpRequest request = Request("/");
  request.cancel = token;
  Notification got_body;
  absl::Status status;
  absl::Time returned;
  std::thread caller([&] {
    HttpStreamCallbacks callbacks;
    callbacks.on_body = [&](absl::string_view) {
      if (!got_body.HasBeenNotified()) got_body.Notify();
      return true;
    };
    status = transport_->Send(request, callbacks);
    returned = absl::Now();
  });
  ASSERT_TRUE(got_body.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // The transfer is now waiting on a silent socket.
  absl::SleepFor(absl::Milliseconds(50));
  const absl::Time cancelled_at = absl::Now();
  token->Cancel();
  caller.join();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  const absl::Duration latency = returned - cancelled_at;
  EXPECT_LT(latency, absl::Milliseconds(250));
  std::cout << "[ measure  ] cancellation latency " << absl::FormatDuration(latency) << "\n";
  EXPECT_TRUE(client_closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST_F(HttpClientTest, AlreadyCancelledRequestIsNotSent) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, "x"); });
  HttpRequest request = Request("/");
  request.cancel = std::make_shared<CancellationToken>();
  request.cancel->Cancel();
  EXPECT_THAT(transport_->Fetch(request),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("before")));
  EXPECT_EQ(server_->connection_count(), 0);
}

// A port with nothing listening: a bound, non-listening socket keeps it ours.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailableAndLeaksNoSecret) {
  ClosedPort closed;
  ASSERT_GT(closed.port(), 0);
  HttpRequest request;
  request.method = HttpMethod::kPost;
  request.url = absl::StrCat("http://user:pa55word@127.0.0.1:", closed.port(),
                             "/v1beta/models/x:streamGenerateContent?alt=sse&key=AIzaSECRETKEY");
  request.headers = {{"Authorization", "Bearer sk-VERYSECRET"}, {"x-api-key", "ant-SECRET2"}};
  request.deadline = absl::Now() + absl::Seconds(10);
  const absl::Status status = transport_->Fetch(request).status();
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kUnavailable,
                               AllOf(HasSubstr("POST http://127.0.0.1:"),
                                     HasSubstr("/v1beta/models/x:streamGenerateContent"),
                                     Not(HasSubstr("SECRET")), Not(HasSubstr("pa55word")),
                                     Not(HasSubstr("alt=sse")))));
}

TEST_F(HttpClientTest, TlsHandshakeWithANonTlsServerIsUnavailable) {
  // A listener that answers every connection with plain-text HTTP at once: a
  // TLS client must fail the handshake, never fall back to clear text.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t length = sizeof(address);
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::thread server([listener] {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain";
    send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    absl::SleepFor(absl::Milliseconds(200));
    close(fd);
  });
  HttpRequest request;
  request.url = absl::StrCat("https://127.0.0.1:", ntohs(address.sin_port), "/v1/models");
  request.deadline = absl::Now() + absl::Seconds(20);
  const absl::Time start = absl::Now();
  EXPECT_THAT(transport_->Fetch(request),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("GET https://127.0.0.1:")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  server.join();
  close(listener);
}

TEST_F(HttpClientTest, SequentialRequestsReuseOneConnection) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, "ok"); });
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK_AND_ASSIGN(HttpResponse response, transport_->Fetch(Request("/")));
    EXPECT_EQ(response.body, "ok");
  }
  EXPECT_EQ(server_->connection_count(), 1);
  const std::vector<FakeHttpRequest> seen = server_->requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].connection_id, seen[2].connection_id);
  EXPECT_EQ(seen[2].index_on_connection, 2);
}

TEST_F(HttpClientTest, ChunkedStreamReusesTheConnectionToo) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    r.Write("a");
    r.Write("b");
  });
  ASSERT_OK_AND_ASSIGN(HttpResponse first, transport_->Fetch(Request("/")));
  ASSERT_OK_AND_ASSIGN(HttpResponse second, transport_->Fetch(Request("/")));
  EXPECT_EQ(second.body, "ab");
  EXPECT_EQ(server_->connection_count(), 1);
}

TEST_F(HttpClientTest, OversizedBufferedBodyIsAClearError) {
  StartServer([](const FakeHttpRequest& request, FakeHttpResponder& r) {
    const std::string body(5000, 'x');
    if (request.path == "/length") {
      r.Respond(200, body);
    } else {  // no Content-Length: found while reading
      r.StartChunked(200);
      for (int i = 0; i < 5; ++i) r.Write(body.substr(0, 1000));
    }
  });
  for (const char* path : {"/length", "/chunked"}) {
    HttpRequest request = Request(path);
    request.max_response_bytes = 2048;
    EXPECT_THAT(transport_->Fetch(request),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         HasSubstr("exceeds max_response_bytes (2048 bytes)")))
        << path;
    request.max_response_bytes = 5000;
    EXPECT_THAT(transport_->Fetch(request), IsOk()) << path;  // exactly at the limit
  }
}

TEST_F(HttpClientTest, BodyCutShortOfItsLengthIsUnavailable) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartWithLength(200, 100);
    r.Write("only ten..");
  });
  EXPECT_THAT(transport_->Fetch(Request("/")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("GET")));
}

TEST_F(HttpClientTest, ChunkedBodyCutMidStreamIsUnavailable) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    r.Write("data: 1\n\n");
    r.CloseConnection();
  });
  EXPECT_THAT(transport_->Fetch(Request("/")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("GET")));
}

TEST_F(HttpClientTest, ConnectionResetIsUnavailable) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) {
    r.StartChunked(200);
    r.Write("data: 1\n\n");
    r.Sleep(absl::Milliseconds(20));
    r.ResetConnection();
  });
  EXPECT_THAT(transport_->Fetch(Request("/")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("GET")));
}

TEST_F(HttpClientTest, ClosedWithoutAnyResponseIsUnavailable) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.CloseConnection(); });
  EXPECT_THAT(transport_->Fetch(Request("/")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("GET")));
}

TEST_F(HttpClientTest, MalformedResponseIsUnavailable) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.WriteRaw("garbage\r\n\r\n"); });
  EXPECT_THAT(transport_->Fetch(Request("/")),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("GET")));
}

TEST_F(HttpClientTest, BadRequestsAreInvalidArgumentWithoutTheHeaderValue) {
  StartServer([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, ""); });
  HttpRequest injected = Request("/");
  injected.headers = {{"Authorization", "Bearer sk-SECRET\r\nX-Evil: 1"}};
  EXPECT_THAT(transport_->Fetch(injected),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'Authorization'"), Not(HasSubstr("SECRET")))));
  HttpRequest bad_name = Request("/");
  bad_name.headers = {{"Bad:Name", "v"}};
  EXPECT_THAT(transport_->Fetch(bad_name),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name")));
  HttpRequest no_url;
  EXPECT_THAT(transport_->Fetch(no_url),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("URL")));
  HttpRequest ftp = Request("/");
  ftp.url = "ftp://127.0.0.1/file";
  EXPECT_THAT(transport_->Fetch(ftp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ftp")));
  HttpRequest garbage = Request("/");
  garbage.url = "http://[not a url";
  EXPECT_THAT(transport_->Fetch(garbage),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("GET")));
  EXPECT_EQ(server_->connection_count(), 0);
}

TEST_F(HttpClientTest, ConcurrentRequestsFromManyThreads) {
  StartServer([](const FakeHttpRequest& request, FakeHttpResponder& r) {
    r.Sleep(absl::Milliseconds(5));
    r.Respond(200, request.path);
  });
  constexpr int kThreads = 6;
  constexpr int kPerThread = 5;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string path = absl::StrCat("/", t, "/", i);
        absl::StatusOr<HttpResponse> response = transport_->Fetch(Request(path));
        if (response.ok() && response->body == path) ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_LE(server_->connection_count(), kThreads + 2);  // pooled, not one per request
}

// ---------------------------------------------------------------------------
// Pure helpers.

TEST(HttpStatusToCodeTest, MapsLikeTheHeaderSays) {
  const struct {
    int http;
    absl::StatusCode code;
  } kCases[] = {
      {200, absl::StatusCode::kOk},
      {204, absl::StatusCode::kOk},
      {400, absl::StatusCode::kInvalidArgument},
      {401, absl::StatusCode::kUnauthenticated},
      {403, absl::StatusCode::kPermissionDenied},
      {404, absl::StatusCode::kNotFound},
      {408, absl::StatusCode::kDeadlineExceeded},
      {409, absl::StatusCode::kAborted},
      {413, absl::StatusCode::kInvalidArgument},
      {422, absl::StatusCode::kFailedPrecondition},
      {429, absl::StatusCode::kResourceExhausted},
      {499, absl::StatusCode::kCancelled},
      {500, absl::StatusCode::kInternal},
      {501, absl::StatusCode::kUnimplemented},
      {502, absl::StatusCode::kUnavailable},
      {503, absl::StatusCode::kUnavailable},
      {504, absl::StatusCode::kDeadlineExceeded},
      {529, absl::StatusCode::kInternal},
      {302, absl::StatusCode::kUnknown},
      {0, absl::StatusCode::kUnknown},
  };
  for (const auto& c : kCases) EXPECT_EQ(HttpStatusToCode(c.http), c.code) << c.http;
}

TEST(RedactUrlTest, KeepsSchemeHostPortAndPathOnly) {
  const struct {
    const char* url;
    const char* redacted;
  } kCases[] = {
      {"https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/chat/completions"},
      {"https://host/v1beta/models/g:streamGenerateContent?alt=sse&key=SECRET",
       "https://host/v1beta/models/g:streamGenerateContent"},
      {"http://user:pw@127.0.0.1:8080/x#frag", "http://127.0.0.1:8080/x"},
      {"http://127.0.0.1:8080?q=1", "http://127.0.0.1:8080"},
      {"http://h", "http://h"},
      {"", ""},
      {"no-scheme/path?x", "no-scheme/path"},
  };
  for (const auto& c : kCases) EXPECT_EQ(RedactUrl(c.url), c.redacted) << c.url;
}

TEST(FindHeaderTest, IsCaseInsensitiveAndReturnsTheFirst) {
  const HttpHeaders headers = {{"Content-Type", "a"}, {"content-type", "b"}, {"X", ""}};
  EXPECT_EQ(FindHeader(headers, "CONTENT-TYPE"), absl::optional<std::string>("a"));
  EXPECT_EQ(FindHeader(headers, "x"), absl::optional<std::string>(""));
  EXPECT_EQ(FindHeader(headers, "y"), absl::nullopt);
}

TEST(HttpMethodNameTest, Names) {
  EXPECT_EQ(HttpMethodName(HttpMethod::kGet), "GET");
  EXPECT_EQ(HttpMethodName(HttpMethod::kPost), "POST");
  EXPECT_EQ(HttpMethodName(HttpMethod::kDelete), "DELETE");
}

// ---------------------------------------------------------------------------
// CancellationToken.

TEST(CancellationTokenTest, CallbacksRunOnceOnCancel) {
  CancellationToken token;
  int calls = 0;
  CancellationToken::Registration registration = token.OnCancel([&] { ++calls; });
  EXPECT_FALSE(token.IsCancelled());
  token.Cancel();
  token.Cancel();
  EXPECT_TRUE(token.IsCancelled());
  EXPECT_EQ(calls, 1);
}

TEST(CancellationTokenTest, DestroyedRegistrationDoesNotRun) {
  CancellationToken token;
  int calls = 0;
  {
    CancellationToken::Registration registration = token.OnCancel([&] { ++calls; });
    CancellationToken::Registration moved = std::move(registration);
  }
  token.Cancel();
  EXPECT_EQ(calls, 0);
}

TEST(CancellationTokenTest, RegisteringAfterCancelRunsAtOnce) {
  CancellationToken token;
  token.Cancel();
  int calls = 0;
  CancellationToken::Registration registration = token.OnCancel([&] { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(CancellationTokenTest, CancelFromAnotherThreadIsSeen) {
  CancellationToken token;
  Notification ran;
  CancellationToken::Registration registration = token.OnCancel([&] { ran.Notify(); });
  std::thread canceller([&] { token.Cancel(); });
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(5)));
  canceller.join();
  EXPECT_TRUE(token.IsCancelled());
}

}  // namespace
}  // namespace tiermesh::http
