// Strict, typed reading of a YAML config tree into plain C++ structs, with
// errors that name the full path and position of what is wrong:
//
//   config.yaml: unknown key 'providers[2].base_urll' (line 14, column 5); did you mean 'base_url'?
//   config.yaml: server.port: 70000 is out of range [1, 65535] (line 3, column 9)
//   config.yaml: missing required key 'providers[0].name' (line 9, column 5)
//
// The idiom: each service defines its config struct(s) and one pure parse
// function; nested structs get a `Decode` overload in the same namespace as
// the struct (found by argument-dependent lookup, so lists and maps of them
// just work). An ObjectReader marks each key it reads; Finish() returns the
// first error, or rejects the keys nobody read.
//
//   struct Backend {
//     std::string name;
//     std::string endpoint;
//     absl::Duration timeout = absl::Seconds(30);
//     Tier tier = Tier::kSmall;
//   };
//   struct RouterConfig {
//     std::string listen = "0.0.0.0:8080";
//     std::vector<Backend> backends;
//   };
//
//   absl::Status Decode(const config::Node& node, Tier* out) {
//     return config::DecodeEnum(node, out, {{"small", Tier::kSmall}, {"large", Tier::kLarge}});
//   }
//   absl::Status Decode(const config::Node& node, Backend* out) {
//     config::ObjectReader r(node);
//     r.Required("name", &out->name, config::NonEmpty());
//     r.Required("endpoint", &out->endpoint);
//     r.Optional("timeout", &out->timeout,
//                config::InRange(absl::Milliseconds(1), absl::Minutes(10)));
//     r.Optional("tier", &out->tier);
//     return r.Finish();
//   }
//   absl::StatusOr<RouterConfig> ParseRouterConfig(const YAML::Node& root) {
//     RouterConfig c;
//     config::ObjectReader r(root);
//     r.Optional("listen", &c.listen);
//     r.Required("backends", &c.backends, config::NonEmpty());
//     TIERMESH_RETURN_IF_ERROR(r.Finish());
//     return c;
//   }
//
//   // main:  LoadConfigFile(path, config::ProcessEnv(), ParseRouterConfig)  (loader.h)
//   // tests: ParseRouterConfig(*config::ParseYaml("backends: [...]", "test"))
//
// Decoding is strict: "yes"/"on" are not booleans, "30" is not a duration
// (write "30s"), 1.5 is not an integer, a list is never a string. A key whose
// value is null (`key:` or `key: ~`) counts as absent. None of this throws:
// yaml-cpp exceptions stop here.
#ifndef TIERMESH_SERVICES_COMMON_CONFIG_SCHEMA_H_
#define TIERMESH_SERVICES_COMMON_CONFIG_SCHEMA_H_

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "yaml-cpp/yaml.h"

namespace tiermesh::config {

// A YAML node plus where it is: its path from the root ("providers[2].name";
// "" for the root) and its position in the source. Cheap to copy.
class Node {
 public:
  // The root of a tree (implicit, so that parse functions taking a
  // YAML::Node can hand it to an ObjectReader directly).
  Node(const YAML::Node& yaml) : yaml_(yaml) {}  // NOLINT(google-explicit-constructor)
  Node(const YAML::Node& yaml, std::string path) : yaml_(yaml), path_(std::move(path)) {}

  const YAML::Node& yaml() const { return yaml_; }
  const std::string& path() const { return path_; }

  bool IsNull() const;  // also true for an undefined node
  bool IsScalar() const;
  bool IsSequence() const;
  bool IsMap() const;
  // The scalar's text; "" for anything else.
  std::string Scalar() const;
  // "a mapping", "a list", "a string", "null": for "expected X, got Y".
  std::string KindName() const;

  // "line 12, column 5" (1-based), or "" when the node has no position.
  std::string Location() const;
  // InvalidArgument "<path>: <problem> (<location>)", leaving out what is empty.
  [[nodiscard]] absl::Status Error(absl::string_view problem) const;

  // Paths of children: "a.b", "a[3]".
  [[nodiscard]] Node Child(absl::string_view key, const YAML::Node& value) const;
  [[nodiscard]] Node Element(size_t index, const YAML::Node& value) const;

 private:
  YAML::Node yaml_;
  std::string path_;
};

// ---- Decode: one overload per supported type; add your own by ADL. ----

[[nodiscard]] absl::Status Decode(const Node& node, std::string* out);
[[nodiscard]] absl::Status Decode(const Node& node, bool* out);
[[nodiscard]] absl::Status Decode(const Node& node, double* out);
// A non-negative, finite absl::ParseDuration string: "250ms", "30s", "1m30s", "0".
[[nodiscard]] absl::Status Decode(const Node& node, absl::Duration* out);

namespace internal {
[[nodiscard]] absl::Status DecodeSigned(const Node& node, int64_t min, int64_t max, int64_t* out);
[[nodiscard]] absl::Status DecodeUnsigned(const Node& node, uint64_t max, uint64_t* out);
}  // namespace internal

// Any integer type; decimal only, range-checked against the type.
template <typename T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
[[nodiscard]] absl::Status Decode(const Node& node, T* out) {
  if constexpr (std::is_signed_v<T>) {
    int64_t v = 0;
    absl::Status s = internal::DecodeSigned(node, std::numeric_limits<T>::min(),
                                            std::numeric_limits<T>::max(), &v);
    if (s.ok()) *out = static_cast<T>(v);
    return s;
  } else {
    uint64_t v = 0;
    absl::Status s = internal::DecodeUnsigned(node, std::numeric_limits<T>::max(), &v);
    if (s.ok()) *out = static_cast<T>(v);
    return s;
  }
}

template <typename T>
[[nodiscard]] absl::Status Decode(const Node& node, std::vector<T>* out);
template <typename T>
[[nodiscard]] absl::Status Decode(const Node& node, std::map<std::string, T>* out);
template <typename T>
[[nodiscard]] absl::Status Decode(const Node& node, absl::optional<T>* out);

// A scalar that must be one of `values`; the error lists them.
//   absl::Status Decode(const config::Node& n, Priority* out) {
//     return config::DecodeEnum(n, out, {{"cost", Priority::kCost},
//                                        {"quality", Priority::kQuality}});
//   }
template <typename E>
[[nodiscard]] absl::Status DecodeEnum(
    const Node& node, E* out, std::initializer_list<std::pair<absl::string_view, E>> values) {
  if (!node.IsScalar()) return node.Error(absl::StrCat("expected a string, got ", node.KindName()));
  const std::string text = node.Scalar();
  std::string names;
  for (const auto& [name, value] : values) {
    if (text == name) {
      *out = value;
      return absl::OkStatus();
    }
    absl::StrAppend(&names, names.empty() ? "" : ", ", name);
  }
  return node.Error(absl::StrCat("'", text, "' is not one of: ", names));
}

// ---- Checks: callables taking the decoded value, returning a problem. ----

namespace internal {
inline std::string Show(absl::Duration d) { return absl::FormatDuration(d); }
template <typename T>
std::string Show(const T& v) {
  return absl::StrCat(v);
}
// a < b, also across signed and unsigned integers (std::cmp_less is C++20).
template <typename A, typename B>
constexpr bool Less(const A& a, const B& b) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B> &&
                std::is_signed_v<A> != std::is_signed_v<B>) {
    if constexpr (std::is_signed_v<A>) {
      return a < 0 || static_cast<std::make_unsigned_t<A>>(a) < b;
    } else {
      return b > 0 && a < static_cast<std::make_unsigned_t<B>>(b);
    }
  } else {
    return a < b;
  }
}
}  // namespace internal

// Accepts lo <= value <= hi.
template <typename T>
struct InRange {
  InRange(T lo_in, T hi_in) : lo(lo_in), hi(hi_in) {}
  T lo;
  T hi;
  template <typename V>
  absl::Status operator()(const V& v) const {
    if (internal::Less(v, lo) || internal::Less(hi, v)) {
      return absl::InvalidArgumentError(absl::StrCat(internal::Show(v), " is out of range [",
                                                     internal::Show(lo), ", ", internal::Show(hi),
                                                     "]"));
    }
    return absl::OkStatus();
  }
};
// Accepts value >= lo.
template <typename T>
struct AtLeast {
  explicit AtLeast(T lo_in) : lo(lo_in) {}
  T lo;
  template <typename V>
  absl::Status operator()(const V& v) const {
    if (internal::Less(v, lo)) {
      return absl::InvalidArgumentError(
          absl::StrCat(internal::Show(v), " is below the minimum ", internal::Show(lo)));
    }
    return absl::OkStatus();
  }
};
// Accepts a non-empty string, list or map.
struct NonEmpty {
  template <typename V>
  absl::Status operator()(const V& v) const {
    if (v.empty()) return absl::InvalidArgumentError("must not be empty");
    return absl::OkStatus();
  }
};

// ---- ObjectReader: reads a mapping key by key. ----

// Errors are sticky: after the first one every call is a no-op and Finish()
// returns it. Read each key once; Finish() then rejects every key that no
// call asked for (with a "did you mean" hint when a known key is close).
class ObjectReader {
 public:
  // `node` must be a mapping; null (an empty document, `section:`) reads as
  // an empty mapping so that its required keys are reported as missing.
  explicit ObjectReader(const Node& node);

  // Decodes `key` into *out; a missing (or null) key is an error.
  template <typename T>
  void Required(absl::string_view key, T* out) {
    Read(key, out, /*required=*/true, NoCheck());
  }
  // ...and then checks it (InRange, NonEmpty, or any `absl::Status(const T&)`).
  template <typename T, typename Check>
  void Required(absl::string_view key, T* out, const Check& check) {
    Read(key, out, /*required=*/true, check);
  }
  // Decodes `key` into *out when present; leaves *out (its default) otherwise.
  template <typename T>
  void Optional(absl::string_view key, T* out) {
    Read(key, out, /*required=*/false, NoCheck());
  }
  template <typename T, typename Check>
  void Optional(absl::string_view key, T* out, const Check& check) {
    Read(key, out, /*required=*/false, check);
  }

  // True when `key` is present and not null (does not mark it read).
  [[nodiscard]] bool Has(absl::string_view key) const;
  // Marks `key` as known without reading it (e.g. "x-" anchors, deprecated keys).
  void Ignore(absl::string_view key);
  // A cross-field rule: when `ok` is false, fails with `problem` at this mapping.
  void Validate(bool ok, absl::string_view problem);

  // The first error; else InvalidArgument for the first unknown key; else OK.
  [[nodiscard]] absl::Status Finish();
  // The first error so far.
  [[nodiscard]] const absl::Status& status() const { return status_; }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
    bool used = false;
  };
  struct NoCheck {
    template <typename V>
    absl::Status operator()(const V&) const {
      return absl::OkStatus();
    }
  };

  // A check on an absl::optional field applies to the value inside.
  template <typename Check, typename V>
  static absl::Status ApplyCheck(const Check& check, const V& value) {
    return check(value);
  }
  template <typename Check, typename V>
  static absl::Status ApplyCheck(const Check& check, const absl::optional<V>& value) {
    return value.has_value() ? check(*value) : absl::OkStatus();
  }

  Entry* Find(absl::string_view key);
  void MissingKey(absl::string_view key);
  std::string KeyPath(absl::string_view key) const;

  template <typename T, typename Check>
  void Read(absl::string_view key, T* out, bool required, const Check& check) {
    known_.emplace_back(key);
    if (!status_.ok()) return;
    Entry* entry = Find(key);
    if (entry != nullptr) entry->used = true;
    if (entry == nullptr || Node(entry->value).IsNull()) {
      if (required) MissingKey(key);
      return;
    }
    const Node child = node_.Child(key, entry->value);
    T value = *out;  // decoding a struct keeps the defaults it already has
    absl::Status s = Decode(child, &value);
    if (s.ok()) {
      s = ApplyCheck(check, value);
      if (!s.ok()) s = child.Error(s.message());
    }
    if (!s.ok()) {
      status_ = std::move(s);
      return;
    }
    *out = std::move(value);
  }

  Node node_;
  std::vector<Entry> entries_;      // in document order
  std::vector<std::string> known_;  // every key asked for, for hints
  absl::Status status_;
};

// ---- Container decoders. ----

template <typename T>
absl::Status Decode(const Node& node, std::vector<T>* out) {
  if (!node.IsSequence()) return node.Error(absl::StrCat("expected a list, got ", node.KindName()));
  std::vector<T> items;
  size_t index = 0;
  for (const YAML::Node& element : node.yaml()) {
    T item{};
    absl::Status s = Decode(node.Element(index, element), &item);
    if (!s.ok()) return s;
    items.push_back(std::move(item));
    ++index;
  }
  *out = std::move(items);
  return absl::OkStatus();
}

namespace internal {
// The keys and values of a mapping in document order; errors on a non-string
// or duplicate key.
[[nodiscard]] absl::Status MapEntries(const Node& node,
                                      std::vector<std::pair<std::string, YAML::Node>>* out);
}  // namespace internal

template <typename T>
absl::Status Decode(const Node& node, std::map<std::string, T>* out) {
  std::vector<std::pair<std::string, YAML::Node>> entries;
  absl::Status s = internal::MapEntries(node, &entries);
  if (!s.ok()) return s;
  std::map<std::string, T> result;
  for (const auto& [key, value] : entries) {
    T item{};
    s = Decode(node.Child(key, value), &item);
    if (!s.ok()) return s;
    result.emplace(key, std::move(item));
  }
  *out = std::move(result);
  return absl::OkStatus();
}

template <typename T>
absl::Status Decode(const Node& node, absl::optional<T>* out) {
  T value = out->has_value() ? **out : T{};
  absl::Status s = Decode(node, &value);
  if (s.ok()) *out = std::move(value);
  return s;
}

}  // namespace tiermesh::config

#endif  // TIERMESH_SERVICES_COMMON_CONFIG_SCHEMA_H_
