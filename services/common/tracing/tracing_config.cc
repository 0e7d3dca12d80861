#include "services/common/tracing/tracing_config.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "services/common/tracing/otlp_http_exporter.h"

namespace tiermesh::tracing {
namespace {

// The value of `name`, trimmed; nullopt when unset or empty.
absl::optional<std::string> Get(const config::EnvLookup& env, absl::string_view name) {
  absl::optional<std::string> value = env(name);
  if (!value.has_value()) return absl::nullopt;
  absl::string_view trimmed = absl::StripAsciiWhitespace(*value);
  if (trimmed.empty()) return absl::nullopt;
  return std::string(trimmed);
}

// The traces-specific variable if set, else the general one; `*used` names it.
absl::optional<std::string> GetSignal(const config::EnvLookup& env, absl::string_view suffix,
                                      std::string* used) {
  *used = absl::StrCat("OTEL_EXPORTER_OTLP_TRACES_", suffix);
  if (auto v = Get(env, *used)) return v;
  *used = absl::StrCat("OTEL_EXPORTER_OTLP_", suffix);
  return Get(env, *used);
}

absl::optional<std::string> PercentDecode(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return absl::nullopt;
    int value = 0;
    for (size_t k = 1; k <= 2; ++k) {
      const char c = s[i + k];
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) return absl::nullopt;
      value = value * 16 + digit;
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

// "k=v,k2=v2" (W3C baggage-like, values percent-encoded). Errors name the
// entry by position only: these values are often credentials.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseKeyValues(
    absl::string_view text, absl::string_view var) {
  std::vector<std::pair<std::string, std::string>> out;
  int index = 0;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    ++index;
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) continue;
    const size_t eq = entry.find('=');
    const absl::string_view key =
        absl::StripAsciiWhitespace(entry.substr(0, eq == absl::string_view::npos ? 0 : eq));
    if (eq == absl::string_view::npos || key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(var, ": entry ", index, " is not of the form key=value"));
    }
    absl::optional<std::string> k = PercentDecode(key);
    absl::optional<std::string> v = PercentDecode(absl::StripAsciiWhitespace(entry.substr(eq + 1)));
    if (!k.has_value() || !v.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(var, ": entry ", index, " has a malformed %-escape"));
    }
    out.emplace_back(*std::move(k), *std::move(v));
  }
  return out;
}

absl::Status CheckUrl(absl::string_view url, absl::string_view var) {
  if (absl::StartsWithIgnoreCase(url, "http://") || absl::StartsWithIgnoreCase(url, "https://")) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(var, ": expected an http:// or https:// URL, got '", http::RedactUrl(url), "'"));
}

absl::StatusOr<int64_t> ParseInt(const std::string& text, absl::string_view var, int64_t min) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v < min) {
    return absl::InvalidArgumentError(
        absl::StrCat(var, ": expected an integer >= ", min, ", got '", text, "'"));
  }
  return v;
}

absl::Status ParseSampler(const config::EnvLookup& env, SamplerConfig* out) {
  double ratio = 1.0;
  if (absl::optional<std::string> arg = Get(env, "OTEL_TRACES_SAMPLER_ARG")) {
    if (!absl::SimpleAtod(*arg, &ratio) || !(ratio >= 0.0 && ratio <= 1.0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("OTEL_TRACES_SAMPLER_ARG: expected a ratio in [0, 1], got '", *arg, "'"));
    }
  }
  const std::string name =
      absl::AsciiStrToLower(Get(env, "OTEL_TRACES_SAMPLER").value_or("parentbased_traceidratio"));
  if (name == "always_on") {
    *out = {false, 1.0};
  } else if (name == "always_off") {
    *out = {false, 0.0};
  } else if (name == "traceidratio") {
    *out = {false, ratio};
  } else if (name == "parentbased_always_on") {
    *out = {true, 1.0};
  } else if (name == "parentbased_always_off") {
    *out = {true, 0.0};
  } else if (name == "parentbased_traceidratio") {
    *out = {true, ratio};
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("OTEL_TRACES_SAMPLER: unsupported sampler '", name,
                     "' (supported: always_on, always_off, traceidratio, parentbased_always_on, "
                     "parentbased_always_off, parentbased_traceidratio)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TracingConfig> TracingConfigFromEnv(const config::EnvLookup& env,
                                                   absl::string_view default_service_name) {
  TracingConfig c;
  if (absl::optional<std::string> disabled = Get(env, "OTEL_SDK_DISABLED")) {
    if (absl::EqualsIgnoreCase(*disabled, "true")) return c;
    if (!absl::EqualsIgnoreCase(*disabled, "false")) {
      return absl::InvalidArgumentError(
          absl::StrCat("OTEL_SDK_DISABLED: expected true or false, got '", *disabled, "'"));
    }
  }
  bool exporter_on = true;
  if (absl::optional<std::string> exporter = Get(env, "OTEL_TRACES_EXPORTER")) {
    if (absl::EqualsIgnoreCase(*exporter, "none")) {
      exporter_on = false;
    } else if (!absl::EqualsIgnoreCase(*exporter, "otlp")) {
      return absl::InvalidArgumentError(absl::StrCat("OTEL_TRACES_EXPORTER: unsupported exporter '",
                                                     *exporter, "' (supported: otlp, none)"));
    }
  }

  // Endpoint: the traces URL as is, or the base URL + /v1/traces.
  if (absl::optional<std::string> url = Get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    if (absl::Status s = CheckUrl(*url, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); !s.ok()) return s;
    c.traces_endpoint = *url;
  } else if (absl::optional<std::string> base = Get(env, "OTEL_EXPORTER_OTLP_ENDPOINT")) {
    if (absl::Status s = CheckUrl(*base, "OTEL_EXPORTER_OTLP_ENDPOINT"); !s.ok()) return s;
    absl::string_view trimmed = *base;
    while (absl::EndsWith(trimmed, "/")) trimmed.remove_suffix(1);
    c.traces_endpoint = absl::StrCat(trimmed, "/v1/traces");
  }

  std::string var;
  if (absl::optional<std::string> protocol = GetSignal(env, "PROTOCOL", &var)) {
    if (*protocol != "http/json") {
      return absl::InvalidArgumentError(absl::StrCat(var, ": unsupported protocol '", *protocol,
                                                     "' (this exporter speaks http/json only)"));
    }
  }
  if (absl::optional<std::string> headers = GetSignal(env, "HEADERS", &var)) {
    auto pairs = ParseKeyValues(*headers, var);
    if (!pairs.ok()) return pairs.status();
    for (auto& [k, v] : *pairs) c.headers.push_back({std::move(k), std::move(v)});
  }
  if (absl::optional<std::string> timeout = GetSignal(env, "TIMEOUT", &var)) {
    auto ms = ParseInt(*timeout, var, 1);
    if (!ms.ok()) return ms.status();
    c.export_timeout = absl::Milliseconds(*ms);
  }
  if (absl::Status s = ParseSampler(env, &c.sampler); !s.ok()) return s;
  if (absl::optional<std::string> v = Get(env, "OTEL_BSP_MAX_QUEUE_SIZE")) {
    auto n = ParseInt(*v, "OTEL_BSP_MAX_QUEUE_SIZE", 1);
    if (!n.ok()) return n.status();
    c.max_queue_size = static_cast<size_t>(*n);
  }
  if (absl::optional<std::string> v = Get(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")) {
    auto n = ParseInt(*v, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1);
    if (!n.ok()) return n.status();
    c.max_export_batch_size = static_cast<size_t>(*n);
  }
  if (c.max_export_batch_size > c.max_queue_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("OTEL_BSP_MAX_EXPORT_BATCH_SIZE (", c.max_export_batch_size,
                     ") must not exceed OTEL_BSP_MAX_QUEUE_SIZE (", c.max_queue_size, ")"));
  }
  if (absl::optional<std::string> v = Get(env, "OTEL_BSP_SCHEDULE_DELAY")) {
    auto ms = ParseInt(*v, "OTEL_BSP_SCHEDULE_DELAY", 1);
    if (!ms.ok()) return ms.status();
    c.schedule_delay = absl::Milliseconds(*ms);
  }

  // Resource: OTEL_SERVICE_NAME wins over service.name in the attributes.
  std::vector<std::pair<std::string, std::string>> resource;
  if (absl::optional<std::string> attrs = Get(env, "OTEL_RESOURCE_ATTRIBUTES")) {
    auto pairs = ParseKeyValues(*attrs, "OTEL_RESOURCE_ATTRIBUTES");
    if (!pairs.ok()) return pairs.status();
    resource = *std::move(pairs);
  }
  std::string service_name = Get(env, "OTEL_SERVICE_NAME").value_or("");
  for (const auto& [k, v] : resource) {
    if (k == "service.name" && service_name.empty()) service_name = v;
  }
  if (service_name.empty()) service_name = std::string(default_service_name);
  if (service_name.empty()) service_name = "unknown_service";
  c.service_name = service_name;
  c.resource.emplace_back("service.name", service_name);
  for (auto& [k, v] : resource) {
    if (k != "service.name") c.resource.emplace_back(std::move(k), std::move(v));
  }
  c.resource.emplace_back("telemetry.sdk.name", "tiermesh");
  c.resource.emplace_back("telemetry.sdk.language", "cpp");

  c.enabled = exporter_on && !c.traces_endpoint.empty();
  return c;
}

absl::StatusOr<Tracer> NewTracer(const TracingConfig& config,
                                 std::shared_ptr<http::HttpTransport> transport,
                                 logging::Logger logger) {
  if (!config.enabled) return Tracer::Noop();
  if (transport == nullptr) return absl::InvalidArgumentError("NewTracer: no HTTP transport");
  OtlpHttpExporterOptions exporter_options;
  exporter_options.endpoint = config.traces_endpoint;
  exporter_options.headers = config.headers;
  exporter_options.timeout = config.export_timeout;
  exporter_options.resource = config.resource;
  BatchSpanProcessorOptions processor_options;
  processor_options.max_queue_size = config.max_queue_size;
  processor_options.max_export_batch_size = config.max_export_batch_size;
  processor_options.schedule_delay = config.schedule_delay;
  processor_options.logger = logger;
  absl::StatusOr<std::shared_ptr<BatchSpanProcessor>> processor = BatchSpanProcessor::Create(
      std::make_unique<OtlpHttpExporter>(std::move(transport), std::move(exporter_options)),
      std::move(processor_options));
  if (!processor.ok()) return processor.status();
  TracerOptions tracer_options;
  tracer_options.sampler = config.sampler;
  tracer_options.processor = *std::move(processor);
  logger.Info("tracing enabled", {{"endpoint", http::RedactUrl(config.traces_endpoint)},
                                  {"service_name", config.service_name},
                                  {"sample_ratio", config.sampler.ratio}});
  return Tracer(std::move(tracer_options));
}

absl::StatusOr<Tracer> NewTracerFromEnv(const config::EnvLookup& env,
                                        absl::string_view default_service_name,
                                        logging::Logger logger) {
  absl::StatusOr<TracingConfig> config = TracingConfigFromEnv(env, default_service_name);
  if (!config.ok()) return config.status();
  std::shared_ptr<http::HttpTransport> transport;
  if (config->enabled) {
    absl::StatusOr<std::unique_ptr<http::HttpTransport>> curl =
        http::NewCurlHttpTransport(http::CurlTransportOptions{});
    if (!curl.ok()) return curl.status();
    transport = *std::move(curl);
  }
  return NewTracer(*config, std::move(transport), std::move(logger));
}

}  // namespace tiermesh::tracing
