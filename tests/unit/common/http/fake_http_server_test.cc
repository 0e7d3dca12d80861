// Tests of the fake HTTP server itself, driven by a raw socket so that they do
// not depend on the client under test.
#include "tests/fakes/http_server/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

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

// A blocking loopback client socket.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(absl::string_view bytes) {
    ASSERT_EQ(send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  // Reads until `marker` was seen, EOF, or 5 s.
  std::string ReadUntil(absl::string_view marker) {
    const absl::Time end = absl::Now() + absl::Seconds(5);
    while (!absl::StrContains(received_, marker) && absl::Now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      const ssize_t got = recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) break;
      received_.append(buffer, static_cast<size_t>(got));
    }
    return received_;
  }
  // True when the server closed the connection within 5 s.
  bool SeesClose() {
    const absl::Time end = absl::Now() + absl::Seconds(5);
    while (absl::Now() < end) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buffer[4096];
      const ssize_t got = recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return true;
      received_.append(buffer, static_cast<size_t>(got));
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

TEST(FakeHttpServerTest, RecordsRequestsAndAnswersPipelinedOnes) {
  ASSERT_OK_AND_ASSIGN(
      auto server, FakeHttpServer::Start([](const FakeHttpRequest& request, FakeHttpResponder& r) {
        r.Respond(200, request.body.empty() ? request.path : request.body, {{"X-A", "b"}});
      }));
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->base_url(), "http://127.0.0.1:" + std::to_string(server->port()));
  RawClient client(server->port());
  ASSERT_TRUE(client.connected());
  client.Send(
      "GET /first?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
      "POST /second HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
  const std::string reply = client.ReadUntil("hello");
  EXPECT_THAT(reply, StartsWith("HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 6\r\n\r\n/first"));
  EXPECT_THAT(reply, HasSubstr("Content-Length: 5\r\n\r\nhello"));
  ASSERT_TRUE(server->WaitForRequests(2, absl::Seconds(5)));
  const auto requests = server->requests();
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/first?x=1");
  EXPECT_EQ(requests[0].query, "x=1");
  EXPECT_EQ(requests[0].Header("HOST"), absl::optional<std::string>("h"));
  EXPECT_EQ(requests[1].body, "hello");
  EXPECT_EQ(requests[1].connection_id, requests[0].connection_id);
  EXPECT_EQ(requests[1].index_on_connection, 1);
  EXPECT_EQ(server->connection_count(), 1);
}

TEST(FakeHttpServerTest, ChunkedRequestBodyAndExpectContinue) {
  ASSERT_OK_AND_ASSIGN(
      auto server, FakeHttpServer::Start([](const FakeHttpRequest& request, FakeHttpResponder& r) {
        r.Respond(200, request.body);
      }));
  RawClient client(server->port());
  client.Send("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_THAT(client.ReadUntil("100 Continue\r\n\r\n"),
              StartsWith("HTTP/1.1 100 Continue\r\n\r\n"));
  client.Send("3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n");
  EXPECT_THAT(client.ReadUntil("abcde"), HasSubstr("Content-Length: 5\r\n\r\nabcde"));
}

TEST(FakeHttpServerTest, StreamsChunkedAndFinishesOnReturn) {
  ASSERT_OK_AND_ASSIGN(auto server,
                       FakeHttpServer::Start([](const FakeHttpRequest&, FakeHttpResponder& r) {
                         r.StartChunked(200, {{"Content-Type", "text/event-stream"}});
                         r.Write("data: 1\n\n");
                         r.Write("");  // sends nothing: an empty chunk would end the body
                         r.Write("data: 2\n\n");
                       }));
  RawClient client(server->port());
  client.Send("GET / HTTP/1.1\r\n\r\n");
  EXPECT_THAT(
      client.ReadUntil("0\r\n\r\n"),
      HasSubstr(
          "Transfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"));
}

TEST(FakeHttpServerTest, HandlerThatDoesNotAnswerGets500) {
  ASSERT_OK_AND_ASSIGN(auto server,
                       FakeHttpServer::Start([](const FakeHttpRequest&, FakeHttpResponder&) {}));
  RawClient client(server->port());
  client.Send("GET / HTTP/1.1\r\n\r\n");
  EXPECT_THAT(client.ReadUntil("respond"), StartsWith("HTTP/1.1 500 Internal Server Error"));
}

TEST(FakeHttpServerTest, ConnectionCloseRequestClosesAfterTheResponse) {
  ASSERT_OK_AND_ASSIGN(auto server,
                       FakeHttpServer::Start([](const FakeHttpRequest&, FakeHttpResponder& r) {
                         r.Respond(200, "bye");
                       }));
  RawClient client(server->port());
  client.Send("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(client.SeesClose());
  EXPECT_TRUE(server->WaitForClosedConnections(1, absl::Seconds(5)));
}

TEST(FakeHttpServerTest, WaitForClientCloseSeesTheClientLeave) {
  Notification saw_close;
  ASSERT_OK_AND_ASSIGN(auto server,
                       FakeHttpServer::Start([&](const FakeHttpRequest&, FakeHttpResponder& r) {
                         r.StartChunked(200);
                         if (r.WaitForClientClose(absl::Seconds(10))) saw_close.Notify();
                       }));
  {
    RawClient client(server->port());
    client.Send("GET / HTTP/1.1\r\n\r\n");
    ASSERT_TRUE(server->WaitForRequests(1, absl::Seconds(5)));
  }
  EXPECT_TRUE(saw_close.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(FakeHttpServerTest, StopDoesNotHangOnStalledHandlers) {
  ASSERT_OK_AND_ASSIGN(
      auto server, FakeHttpServer::Start([](const FakeHttpRequest& request, FakeHttpResponder& r) {
        if (request.path == "/sleep") {
          r.Sleep(absl::Hours(1));
          return;
        }
        r.StartChunked(200);
        r.Stall();
      }));
  RawClient a(server->port());
  RawClient b(server->port());
  a.Send("GET /stall HTTP/1.1\r\n\r\n");
  b.Send("GET /sleep HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(server->WaitForRequests(2, absl::Seconds(5)));
  const absl::Time start = absl::Now();
  server.reset();  // Stop + join
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(a.SeesClose());
}

TEST(FakeHttpServerTest, StopRefusesNewConnections) {
  ASSERT_OK_AND_ASSIGN(
      auto server, FakeHttpServer::Start(
                       [](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(200, "ok"); }));
  const int port = server->port();
  {
    RawClient before(port);
    EXPECT_TRUE(before.connected());
  }
  server->Stop();
  // Refused at once; a listening socket left open would accept into its backlog and hang.
  RawClient after(port);
  EXPECT_FALSE(after.connected());
  server->Stop();  // idempotent
}

TEST(FakeHttpServerTest, SetHandlerAppliesToLaterRequests) {
  ASSERT_OK_AND_ASSIGN(auto server, FakeHttpServer::Start(nullptr));
  server->SetHandler([](const FakeHttpRequest&, FakeHttpResponder& r) { r.Respond(202, "new"); });
  RawClient client(server->port());
  client.Send("GET / HTTP/1.1\r\n\r\n");
  EXPECT_THAT(client.ReadUntil("new"), StartsWith("HTTP/1.1 202 Status\r\n"));
}

}  // namespace
}  // namespace tiermesh::testing
