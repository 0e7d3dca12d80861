#include "services/cloud_proxy/http_types.h"

#include "absl/strings/match.h"

namespace tiermesh::cloud {

absl::optional<absl::string_view> FindHeader(const Headers& headers, absl::string_view name) {
  for (const auto& [key, value] : headers) {
    if (absl::EqualsIgnoreCase(key, name)) return absl::string_view(value);
  }
  return absl::nullopt;
}

}  // namespace tiermesh::cloud
