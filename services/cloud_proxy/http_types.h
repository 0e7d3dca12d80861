// Plain HTTP request/response values exchanged between the provider adapters
// (pure JSON <-> proto mapping) and the transport. Keeping them as plain data
// lets the adapters be table-tested without any network.
//
//   tiermesh::cloud::Headers h = {{"Retry-After", "3"}};
//   absl::optional<absl::string_view> v = tiermesh::cloud::FindHeader(h, "retry-after");  // "3"
#ifndef TIERMESH_SERVICES_CLOUD_PROXY_HTTP_TYPES_H_
#define TIERMESH_SERVICES_CLOUD_PROXY_HTTP_TYPES_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace tiermesh::cloud {

// Header names keep the case they were given; lookups ignore case.
using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of the first header called `name` (case-insensitive), if any.
absl::optional<absl::string_view> FindHeader(const Headers& headers, absl::string_view name);

// What an adapter asks the transport to send (always a POST of JSON).
struct HttpRequestSpec {
  // Appended to the provider's base_url; may carry a query ("?alt=sse").
  std::string path;
  // Protocol and configured headers. NEVER the API key: the transport adds
  // the one header from ProviderAdapter::AuthHeader() itself, so that a
  // request spec can be logged or compared in tests without leaking it.
  Headers headers;
  std::string body;
};

// A complete (unary) upstream answer.
struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

}  // namespace tiermesh::cloud

#endif  // TIERMESH_SERVICES_CLOUD_PROXY_HTTP_TYPES_H_
