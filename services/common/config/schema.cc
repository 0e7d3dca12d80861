#include "services/common/config/schema.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "services/common/logging/redact.h"

namespace tiermesh::config {
namespace {

// A scalar as it may appear in an error: truncated, and with anything that
// looks like a credential redacted (a key pasted into the wrong field).
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 48;
  std::string shown = logging::RedactSecrets(text.substr(0, kMax));
  if (text.size() > kMax) shown.append("...");
  return absl::StrCat("'", shown, "'");
}

std::string LocationOf(const YAML::Node& yaml) {
  if (!yaml.IsDefined()) return "";
  const YAML::Mark mark = yaml.Mark();
  if (mark.is_null()) return "";
  return absl::StrCat("line ", mark.line + 1, ", column ", mark.column + 1);
}

// "<problem> (<location>)<suffix>" as an InvalidArgument error.
absl::Status ErrorAt(const YAML::Node& yaml, absl::string_view problem,
                     absl::string_view suffix = "") {
  const std::string location = LocationOf(yaml);
  return absl::InvalidArgumentError(
      absl::StrCat(problem, location.empty() ? "" : absl::StrCat(" (", location, ")"), suffix));
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

bool Node::IsNull() const { return !yaml_.IsDefined() || yaml_.IsNull(); }
bool Node::IsScalar() const { return yaml_.IsDefined() && yaml_.IsScalar(); }
bool Node::IsSequence() const { return yaml_.IsDefined() && yaml_.IsSequence(); }
bool Node::IsMap() const { return yaml_.IsDefined() && yaml_.IsMap(); }

std::string Node::Scalar() const { return IsScalar() ? yaml_.Scalar() : std::string(); }

std::string Node::KindName() const {
  if (IsNull()) return "null";
  if (IsScalar()) return "a string";
  if (IsSequence()) return "a list";
  if (IsMap()) return "a mapping";
  return "an unknown node";
}

std::string Node::Location() const { return LocationOf(yaml_); }

absl::Status Node::Error(absl::string_view problem) const {
  return ErrorAt(yaml_, path_.empty() ? std::string(problem) : absl::StrCat(path_, ": ", problem));
}

Node Node::Child(absl::string_view key, const YAML::Node& value) const {
  return Node(value, path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key));
}

Node Node::Element(size_t index, const YAML::Node& value) const {
  return Node(value, absl::StrCat(path_, "[", index, "]"));
}

absl::Status Decode(const Node& node, std::string* out) {
  if (!node.IsScalar()) return node.Error(absl::StrCat("expected a string, got ", node.KindName()));
  *out = node.Scalar();
  return absl::OkStatus();
}

absl::Status Decode(const Node& node, bool* out) {
  if (node.IsScalar()) {
    const std::string s = node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") {
      *out = true;
      return absl::OkStatus();
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      *out = false;
      return absl::OkStatus();
    }
    return node.Error(absl::StrCat("expected true or false, got ", Quote(s)));
  }
  return node.Error(absl::StrCat("expected true or false, got ", node.KindName()));
}

absl::Status Decode(const Node& node, double* out) {
  if (!node.IsScalar()) return node.Error(absl::StrCat("expected a number, got ", node.KindName()));
  const std::string s = node.Scalar();
  double v = 0;
  if (!absl::SimpleAtod(s, &v) || !std::isfinite(v)) {
    return node.Error(absl::StrCat("expected a finite number, got ", Quote(s)));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status Decode(const Node& node, absl::Duration* out) {
  constexpr absl::string_view kExpected = "expected a duration such as 30s, 250ms or 1m30s, got ";
  if (!node.IsScalar()) return node.Error(absl::StrCat(kExpected, node.KindName()));
  const std::string s = node.Scalar();
  absl::Duration d;
  if (!absl::ParseDuration(s, &d) || d == absl::InfiniteDuration() ||
      d == -absl::InfiniteDuration()) {
    return node.Error(absl::StrCat(kExpected, Quote(s)));
  }
  if (d < absl::ZeroDuration()) {
    return node.Error(absl::StrCat("duration must not be negative, got ", Quote(s)));
  }
  *out = d;
  return absl::OkStatus();
}

namespace internal {

absl::Status DecodeSigned(const Node& node, int64_t min, int64_t max, int64_t* out) {
  if (!node.IsScalar()) {
    return node.Error(absl::StrCat("expected an integer, got ", node.KindName()));
  }
  const std::string s = node.Scalar();
  int64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) {
    return node.Error(absl::StrCat("expected an integer, got ", Quote(s)));
  }
  if (v < min || v > max) {
    return node.Error(absl::StrCat(v, " is out of range [", min, ", ", max, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status DecodeUnsigned(const Node& node, uint64_t max, uint64_t* out) {
  if (!node.IsScalar()) {
    return node.Error(absl::StrCat("expected a non-negative integer, got ", node.KindName()));
  }
  const std::string s = node.Scalar();
  uint64_t v = 0;
  if (absl::StrContains(s, '-') || !absl::SimpleAtoi(s, &v)) {
    return node.Error(absl::StrCat("expected a non-negative integer, got ", Quote(s)));
  }
  if (v > max) return node.Error(absl::StrCat(v, " is out of range [0, ", max, "]"));
  *out = v;
  return absl::OkStatus();
}

absl::Status MapEntries(const Node& node, std::vector<std::pair<std::string, YAML::Node>>* out) {
  out->clear();
  if (node.IsNull()) return absl::OkStatus();
  if (!node.IsMap()) return node.Error(absl::StrCat("expected a mapping, got ", node.KindName()));
  for (auto it = node.yaml().begin(); it != node.yaml().end(); ++it) {
    const YAML::Node key = it->first;  // a copy: `it->` yields a temporary proxy
    const std::string where = node.path().empty() ? "" : absl::StrCat(" in '", node.path(), "'");
    if (!key.IsDefined() || !key.IsScalar()) {
      return ErrorAt(key, absl::StrCat("keys must be strings", where));
    }
    const std::string name = key.Scalar();
    if (name == "<<") {
      return ErrorAt(key, absl::StrCat("merge keys ('<<') are not supported", where,
                                       "; repeat the keys instead"));
    }
    for (const auto& [seen, value] : *out) {
      if (seen == name) {
        const std::string path = node.path().empty() ? name : absl::StrCat(node.path(), ".", name);
        return ErrorAt(key, absl::StrCat("duplicate key '", path, "'"));
      }
    }
    out->emplace_back(name, it->second);
  }
  return absl::OkStatus();
}

}  // namespace internal

ObjectReader::ObjectReader(const Node& node) : node_(node) {
  std::vector<std::pair<std::string, YAML::Node>> entries;
  status_ = internal::MapEntries(node, &entries);
  if (!status_.ok() || node.IsNull()) return;
  // Keep each key's own node for its position in "unknown key" errors.
  size_t index = 0;
  for (auto it = node.yaml().begin(); it != node.yaml().end() && index < entries.size();
       ++it, ++index) {
    entries_.push_back(
        Entry{std::move(entries[index].first), it->first, std::move(entries[index].second), false});
  }
}

ObjectReader::Entry* ObjectReader::Find(absl::string_view key) {
  for (Entry& entry : entries_) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

std::string ObjectReader::KeyPath(absl::string_view key) const {
  return node_.path().empty() ? std::string(key) : absl::StrCat(node_.path(), ".", key);
}

void ObjectReader::MissingKey(absl::string_view key) {
  status_ = ErrorAt(node_.yaml(), absl::StrCat("missing required key '", KeyPath(key), "'"));
}

bool ObjectReader::Has(absl::string_view key) const {
  for (const Entry& entry : entries_) {
    if (entry.key == key) return !Node(entry.value).IsNull();
  }
  return false;
}

void ObjectReader::Ignore(absl::string_view key) {
  known_.emplace_back(key);
  if (Entry* entry = Find(key)) entry->used = true;
}

void ObjectReader::Validate(bool ok, absl::string_view problem) {
  if (status_.ok() && !ok) status_ = node_.Error(problem);
}

absl::Status ObjectReader::Finish() {
  if (!status_.ok()) return status_;
  for (const Entry& entry : entries_) {
    if (entry.used) continue;
    std::string hint;
    size_t best = (entry.key.size() <= 4 ? 1 : 2) + 1;  // hint only for close misses
    for (const std::string& candidate : known_) {
      const size_t d = EditDistance(entry.key, candidate);
      if (d < best) {
        best = d;
        hint = absl::StrCat("; did you mean '", candidate, "'?");
      }
    }
    status_ = ErrorAt(entry.key_node, absl::StrCat("unknown key '", KeyPath(entry.key), "'"), hint);
    return status_;
  }
  return absl::OkStatus();
}

}  // namespace tiermesh::config
