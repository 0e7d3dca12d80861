// Test helpers that read metrics the way Prometheus does: an HTTP GET of
// /metrics over a plain loopback socket, then a lookup of one sample in the
// text exposition format.
//
//   ASSERT_OK_AND_ASSIGN(std::string text, ScrapeMetrics(metrics->port()));
//   EXPECT_EQ(SampleValue(text, "tiermesh_grpc_server_requests_total",
//                         {{"method", "/tiermesh.v1.ClassifierService/Classify"},
//                          {"code", "OK"}}),
//             2);
#ifndef TIERMESH_TESTS_UNIT_COMMON_METRICS_SCRAPE_UTIL_H_
#define TIERMESH_TESTS_UNIT_COMMON_METRICS_SCRAPE_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tiermesh::testing {

// GET http://127.0.0.1:<port><path> (HTTP/1.0, so the server closes the
// connection after the body). Returns the body of a 200 answer.
inline absl::StatusOr<std::string> HttpGet(int port, absl::string_view path = "/metrics") {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  // A test must fail, not hang, if the server stops answering.
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect 127.0.0.1:", port, ": ", std::strerror(err)));
  }
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string response;
  char buffer[8192];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat("recv: ", std::strerror(err)));
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos) return absl::DataLossError("no HTTP header end");
  const absl::string_view status_line =
      absl::string_view(response).substr(0, response.find("\r\n"));
  if (!absl::StrContains(status_line, " 200")) {
    return absl::UnavailableError(absl::StrCat("HTTP answer: ", status_line));
  }
  return response.substr(header_end + 4);
}

inline absl::StatusOr<std::string> ScrapeMetrics(int port) { return HttpGet(port, "/metrics"); }

// The value of the sample `name{labels}` (exact label set, any order), or
// nullopt when there is no such sample.
inline std::optional<double> SampleValue(absl::string_view text, absl::string_view name,
                                         const std::map<std::string, std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line.front() == '#') continue;
    const size_t name_end = line.find_first_of("{ ");
    if (name_end == absl::string_view::npos || line.substr(0, name_end) != name) continue;
    std::map<std::string, std::string> found;
    absl::string_view rest = line.substr(name_end);
    if (absl::ConsumePrefix(&rest, "{")) {
      const size_t close = rest.find('}');
      if (close == absl::string_view::npos) continue;
      absl::string_view label_text = rest.substr(0, close);
      rest = rest.substr(close + 1);
      // Label values in these tests hold no commas or escaped quotes.
      for (absl::string_view pair : absl::StrSplit(label_text, ',', absl::SkipEmpty())) {
        const size_t eq = pair.find('=');
        if (eq == absl::string_view::npos) continue;
        absl::string_view value = pair.substr(eq + 1);
        absl::ConsumePrefix(&value, "\"");
        absl::ConsumeSuffix(&value, "\"");
        found.emplace(std::string(pair.substr(0, eq)), std::string(value));
      }
    }
    if (found != labels) continue;
    rest = absl::StripLeadingAsciiWhitespace(rest);
    const size_t space = rest.find(' ');  // an optional timestamp follows
    double value = 0;
    if (absl::SimpleAtod(rest.substr(0, space), &value)) return value;
  }
  return std::nullopt;
}

}  // namespace tiermesh::testing

#endif  // TIERMESH_TESTS_UNIT_COMMON_METRICS_SCRAPE_UTIL_H_
