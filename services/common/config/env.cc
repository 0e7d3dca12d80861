#include "services/common/config/env.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tiermesh::config {
namespace {

bool IsNameStart(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

EnvLookup ProcessEnv() {
  return [](absl::string_view name) -> absl::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return absl::nullopt;
    return std::string(value);
  };
}

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view name) -> absl::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return absl::nullopt;
    return it->second;
  };
}

absl::StatusOr<std::string> InterpolateEnv(absl::string_view text, const EnvLookup& env) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$') {
      out.push_back(text[i++]);
      continue;
    }
    if (absl::StartsWith(text.substr(i), "$${")) {
      out.append("${");
      i += 3;
      continue;
    }
    if (!absl::StartsWith(text.substr(i), "${")) {
      out.push_back(text[i++]);
      continue;
    }
    const size_t open = i;
    const size_t close = text.find('}', open + 2);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unterminated '${' at character ", open + 1,
                                                     " (escape a literal as '$${')"));
    }
    const absl::string_view inner = text.substr(open + 2, close - open - 2);
    size_t name_len = 0;
    if (!inner.empty() && IsNameStart(inner[0])) {
      name_len = 1;
      while (name_len < inner.size() && IsNameChar(inner[name_len])) ++name_len;
    }
    const absl::string_view name = inner.substr(0, name_len);
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("invalid variable name in '${", inner,
                                                     "}' (names are [A-Za-z_][A-Za-z0-9_]*)"));
    }
    const absl::string_view modifier = inner.substr(name_len);
    bool has_default = false;
    bool default_if_empty = false;
    absl::string_view default_value;
    if (absl::StartsWith(modifier, ":-")) {
      has_default = true;
      default_if_empty = true;
      default_value = modifier.substr(2);
    } else if (absl::StartsWith(modifier, "-")) {
      has_default = true;
      default_value = modifier.substr(1);
    } else if (!modifier.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported form '${", inner, "}' (use ${",
                                                     name, "}, ${", name, ":-default} or ${", name,
                                                     "-default})"));
    }
    if (absl::StrContains(default_value, "${")) {
      return absl::InvalidArgumentError(
          absl::StrCat("nested '${' in the default of variable '", name, "' is not supported"));
    }
    const absl::optional<std::string> value = env(name);
    if (value.has_value() && !(default_if_empty && value->empty())) {
      out.append(*value);
    } else if (has_default) {
      out.append(default_value.data(), default_value.size());
    } else {
      return absl::InvalidArgumentError(absl::StrCat("environment variable '", name,
                                                     "' is not set (write ${", name,
                                                     ":-default} to give a default)"));
    }
    i = close + 1;
  }
  return out;
}

}  // namespace tiermesh::config
