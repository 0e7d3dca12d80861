#include "services/cloud_proxy/json_util.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"

#include "services/common/text/utf8.h"

namespace tiermesh::cloud {

absl::StatusOr<Json> ParseJson(absl::string_view text, absl::string_view what) {
  std::string repaired;
  if (!text::IsValidUtf8(text)) {
    repaired = text::RepairUtf8(text);
    text = repaired;
  }
  Json j = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  }
  return j;
}

const Json* Field(const Json& obj, absl::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it == obj.end()) return nullptr;
  return &*it;
}

std::string StringOr(const Json& obj, absl::string_view key, absl::string_view fallback) {
  const Json* f = Field(obj, key);
  if (f == nullptr || !f->is_string()) return std::string(fallback);
  return f->get<std::string>();
}

absl::optional<int64_t> IntField(const Json& obj, absl::string_view key) {
  const Json* f = Field(obj, key);
  if (f == nullptr) return absl::nullopt;
  if (f->is_number_unsigned()) {
    const uint64_t v = f->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return absl::nullopt;
    return static_cast<int64_t>(v);
  }
  if (f->is_number_integer()) {
    const int64_t v = f->get<int64_t>();
    if (v < 0) return absl::nullopt;
    return v;
  }
  if (f->is_number_float()) {
    const double d = f->get<double>();
    if (!std::isfinite(d) || d < 0 || d != std::floor(d) || d > 9.0e18) return absl::nullopt;
    return static_cast<int64_t>(d);
  }
  return absl::nullopt;
}

std::string DumpJson(const Json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

double FloatToJsonNumber(float value) {
  if (!std::isfinite(value)) return static_cast<double>(value);
  char buf[64];
  for (int precision = 1; precision <= 9; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, static_cast<double>(value));
    const double d = std::strtod(buf, nullptr);
    if (static_cast<float>(d) == value) return d;
  }
  return static_cast<double>(value);
}

}  // namespace tiermesh::cloud
