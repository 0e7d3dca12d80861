#include "services/cloud_proxy/config.h"

#include <limits>
#include <map>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "services/common/config/loader.h"
#include "services/common/config/schema.h"

namespace tiermesh::cloud {
namespace {

using tiermesh::config::InRange;
using tiermesh::config::Node;
using tiermesh::config::NonEmpty;
using tiermesh::config::ObjectReader;

bool IsEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool AllOf(absl::string_view s, size_t max_len, bool (*ok)(char)) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    if (!ok(c)) return false;
  }
  return true;
}

bool ProviderNameChar(char c) {
  return absl::ascii_islower(static_cast<unsigned char>(c)) ||
         absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
bool ModelNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
         c == ':' || c == '/' || c == '@';
}
bool GeminiModelChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}
bool HeaderNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

// A check for ObjectReader: the string matches `ok` (1..max_len chars).
struct Chars {
  size_t max_len;
  bool (*ok)(char);
  const char* what;
  absl::Status operator()(const std::string& s) const {
    if (AllOf(s, max_len, ok)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat("\"", s, "\" is not ", what));
  }
};

absl::string_view DefaultBaseUrl(ProviderKind kind) {
  switch (kind) {
    case ProviderKind::kOpenAiCompatible:
      return "https://api.openai.com/v1";
    case ProviderKind::kAnthropic:
      return "https://api.anthropic.com";
    case ProviderKind::kGemini:
      return "https://generativelanguage.googleapis.com";
  }
  return "";
}

// A price is decimal text; plain YAML numbers are read by their text, so
// "0.15" and 0.15 mean the same and no binary float is involved.
struct PriceText {
  std::string input, output, cached_input;
};

}  // namespace

absl::Status Decode(const Node& node, ProviderKind* out) {
  return tiermesh::config::DecodeEnum(node, out,
                                      {{"openai_compatible", ProviderKind::kOpenAiCompatible},
                                       {"anthropic", ProviderKind::kAnthropic},
                                       {"gemini", ProviderKind::kGemini}});
}

absl::Status Decode(const Node& node, Price* out) {
  ObjectReader r(node);
  PriceText text;
  r.Required("input_usd_per_mtok", &text.input);
  r.Required("output_usd_per_mtok", &text.output);
  r.Optional("cached_input_usd_per_mtok", &text.cached_input);
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  absl::StatusOr<Price> price = MakePrice(text.input, text.output, text.cached_input);
  if (!price.ok()) return node.Error(price.status().message());
  *out = *price;
  return absl::OkStatus();
}

absl::Status Decode(const Node& node, RateLimits* out) {
  ObjectReader r(node);
  r.Optional("requests_per_minute", &out->requests_per_minute, InRange<int64_t>(0, 1'000'000'000));
  r.Optional("tokens_per_minute", &out->tokens_per_minute, InRange<int64_t>(0, 1'000'000'000'000));
  return r.Finish();
}

absl::Status Decode(const Node& node, ModelConfig* out) {
  ObjectReader r(node);
  r.Required("name", &out->name,
             Chars{128, ModelNameChar, "a model name ([A-Za-z0-9_.:/@-]{1,128})"});
  absl::optional<std::string> upstream;
  r.Optional("upstream", &upstream, NonEmpty());
  r.Optional("context_window", &out->context_window,
             InRange<int32_t>(0, std::numeric_limits<int32_t>::max()));
  r.Optional("max_output_tokens", &out->max_output_tokens, InRange<int32_t>(0, 1048576));
  r.Optional("supports_tools", &out->supports_tools);
  r.Optional("supports_streaming", &out->supports_streaming);
  r.Optional("supports_top_k", &out->supports_top_k);
  r.Optional("max_tokens_field", &out->max_tokens_field, [](const std::string& f) {
    return f == "max_tokens" || f == "max_completion_tokens"
               ? absl::OkStatus()
               : absl::InvalidArgumentError("must be max_tokens or max_completion_tokens");
  });
  if (!r.Has("price")) {
    r.Validate(false, "price is required (use \"0\" for a free model)");
  }
  r.Optional("price", &out->price);
  if (absl::Status s = r.Finish(); !s.ok()) return s;
  out->upstream = upstream.value_or(out->name);
  return absl::OkStatus();
}

absl::Status Decode(const Node& node, ProviderConfig* out) {
  ObjectReader r(node);
  r.Required("name", &out->name, Chars{64, ProviderNameChar, "a provider name ([a-z0-9_-]{1,64})"});
  r.Required("type", &out->kind);
  absl::optional<std::string> base_url;
  r.Optional("base_url", &base_url, [](const std::string& url) {
    if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
      return absl::InvalidArgumentError("must start with http:// or https://");
    }
    if (absl::StrContains(url, "?") || absl::StrContains(url, "#") ||
        absl::StrContains(url, "${")) {
      return absl::InvalidArgumentError("must not contain a query, a fragment or ${...}");
    }
    return absl::OkStatus();
  });
  absl::optional<std::string> key;
  r.Optional("api_key", &key, [](const std::string& value) {
    absl::string_view ref = value;
    // Never echo the value: it may be a pasted key.
    if (!absl::ConsumePrefix(&ref, "${") || !absl::ConsumeSuffix(&ref, "}") || !IsEnvName(ref)) {
      return absl::InvalidArgumentError(
          "must name an environment variable as ${VAR}; literal keys are not accepted (use "
          "api_key_file for a file)");
    }
    return absl::OkStatus();
  });
  absl::optional<std::string> key_file;
  r.Optional("api_key_file", &key_file, NonEmpty());
  r.Validate(!(key.has_value() && key_file.has_value()), "set api_key or api_key_file, not both");
  std::map<std::string, std::string> headers;
  r.Optional("headers", &headers);
  r.Optional("limits", &out->limits);
  r.Optional("max_concurrency", &out->max_concurrency, InRange<int32_t>(0, 1'000'000));
  r.Optional("connect_timeout", &out->connect_timeout,
             InRange<absl::Duration>(absl::Milliseconds(1), absl::Hours(1)));
  r.Optional("idle_timeout", &out->idle_timeout,
             InRange<absl::Duration>(absl::Milliseconds(1), absl::Hours(1)));
  r.Optional("stream_include_usage", &out->stream_include_usage);
  absl::optional<std::string> version;
  r.Optional("anthropic_version", &version, NonEmpty());
  r.Required("models", &out->models, NonEmpty());
  if (absl::Status s = r.Finish(); !s.ok()) return s;

  if (version) {
    if (out->kind != ProviderKind::kAnthropic) {
      return node.Error("anthropic_version is for anthropic providers only");
    }
    out->anthropic_version = *version;
  }
  out->base_url = base_url.value_or(std::string(DefaultBaseUrl(out->kind)));
  while (absl::EndsWith(out->base_url, "/")) out->base_url.pop_back();
  if (key) {
    out->key = {KeySource::Kind::kEnv, key->substr(2, key->size() - 3)};
  } else if (key_file) {
    out->key = {KeySource::Kind::kFile, *key_file};
  }
  for (const auto& [name, value] : headers) {
    const std::string lower = absl::AsciiStrToLower(name);
    if (!AllOf(name, 128, HeaderNameChar)) {
      return node.Error(absl::StrCat("headers: invalid header name \"", name, "\""));
    }
    if (lower == "authorization" || lower == "x-api-key" || lower == "x-goog-api-key" ||
        lower == "content-type" || lower == "content-length" || lower == "host" ||
        lower == "accept" || lower == "anthropic-version") {
      return node.Error(
          absl::StrCat("headers: \"", name, "\" is set by the proxy itself (keys go in api_key)"));
    }
    if (value.find_first_of("\r\n") != std::string::npos) {
      return node.Error(absl::StrCat("headers: \"", name, "\" has a line break"));
    }
    out->headers.emplace_back(name, value);
  }
  for (ModelConfig& model : out->models) {
    if (out->kind != ProviderKind::kGemini) continue;
    // The Gemini model id goes into the URL path.
    if (absl::StartsWith(model.upstream, "models/")) model.upstream.erase(0, 7);
    if (!AllOf(model.upstream, 128, GeminiModelChar)) {
      return node.Error(
          absl::StrCat("model ", model.name, ": a gemini upstream model id is [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CloudConfig> ParseCloudConfigNode(const YAML::Node& root) {
  CloudConfig config;
  try {
    ObjectReader r{Node(root)};
    r.Optional("providers", &config.providers);
    if (absl::Status s = r.Finish(); !s.ok()) return s;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cloud config: ", e.what()));
  }
  absl::flat_hash_set<std::string> provider_names;
  absl::flat_hash_set<std::string> model_names;
  for (size_t i = 0; i < config.providers.size(); ++i) {
    const ProviderConfig& p = config.providers[i];
    if (!provider_names.insert(p.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("providers[", i, "]: duplicate provider name \"", p.name, "\""));
    }
    for (const ModelConfig& m : p.models) {
      if (!model_names.insert(m.name).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "providers[", i, "] (", p.name, "): model name \"", m.name, "\" is used twice"));
      }
    }
  }
  return config;
}

absl::StatusOr<CloudConfig> ParseCloudConfig(absl::string_view yaml_text,
                                             absl::string_view source_name) {
  absl::StatusOr<YAML::Node> root = tiermesh::config::ParseYaml(yaml_text, source_name);
  if (!root.ok()) return root.status();
  absl::StatusOr<CloudConfig> config = ParseCloudConfigNode(*root);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(source_name, ": ", config.status().message()));
  }
  return config;
}

absl::StatusOr<std::string> ResolveKey(const KeySource& source, const EnvLookup& env,
                                       const FileReader& read_file) {
  std::string key;
  switch (source.kind) {
    case KeySource::Kind::kNone:
      return absl::NotFoundError("no api key configured");
    case KeySource::Kind::kEnv: {
      absl::optional<std::string> value = env ? env(source.ref) : absl::nullopt;
      if (!value || absl::StripAsciiWhitespace(*value).empty()) {
        return absl::NotFoundError(
            absl::StrCat("api key variable ", source.ref, " is not set or empty"));
      }
      key = std::string(absl::StripAsciiWhitespace(*value));
      break;
    }
    case KeySource::Kind::kFile: {
      if (!read_file) return absl::NotFoundError("no file reader to read the api key file");
      absl::StatusOr<std::string> text = read_file(source.ref);
      if (!text.ok()) {
        return absl::NotFoundError(absl::StrCat("api key file ", source.ref,
                                                " cannot be read: ", text.status().message()));
      }
      key = std::string(absl::StripAsciiWhitespace(*text));
      if (key.empty()) {
        return absl::NotFoundError(absl::StrCat("api key file ", source.ref, " is empty"));
      }
      break;
    }
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7E) {
      return absl::InvalidArgumentError(absl::StrCat(
          "api key from ", source.ref, " holds whitespace or non-printable characters"));
    }
  }
  return key;
}

absl::StatusOr<Headers> ResolveHeaders(const Headers& headers, const EnvLookup& env) {
  Headers out;
  for (const auto& [name, value] : headers) {
    absl::StatusOr<std::string> expanded = tiermesh::config::InterpolateEnv(value, env);
    if (!expanded.ok()) {
      return absl::Status(expanded.status().code(),
                          absl::StrCat("header ", name, ": ", expanded.status().message()));
    }
    if (expanded->find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("header ", name, ": value has a line break"));
    }
    out.emplace_back(name, *std::move(expanded));
  }
  return out;
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  return tiermesh::config::ReadFileToString(path);
}

}  // namespace tiermesh::cloud
