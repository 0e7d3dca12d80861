#include "services/worker/llama_load.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

#include "services/common/text/utf8.h"

namespace tiermesh::worker {
namespace {

using Json = nlohmann::json;

absl::Status Malformed(absl::string_view endpoint, absl::string_view what) {
  return absl::InternalError(absl::StrCat("llama-server ", endpoint, " is malformed: ", what));
}

absl::optional<Json> ParseJson(absl::string_view text) {
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::nullopt;
  return parsed;
}

// A non-negative integer member; absent or null gives `fallback`.
absl::StatusOr<int64_t> Count(const Json& object, const char* key, int64_t fallback,
                              absl::string_view endpoint) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer() || it->get<int64_t>() < 0) {
    return Malformed(endpoint, absl::StrCat("'", key, "' is not a non-negative integer"));
  }
  return it->get<int64_t>();
}

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

absl::optional<double> ParseSampleValue(absl::string_view text) {
  if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (text == "+Inf" || text == "Inf") return std::numeric_limits<double>::infinity();
  if (text == "-Inf") return -std::numeric_limits<double>::infinity();
  double value;
  if (!absl::SimpleAtod(text, &value)) return absl::nullopt;
  return value;
}

// Parses one sample line; returns an error message on failure.
absl::StatusOr<PrometheusSample> ParseSampleLine(absl::string_view line) {
  PrometheusSample sample;
  size_t i = 0;
  if (i >= line.size() || !IsNameStart(line[i])) return absl::InternalError("bad metric name");
  while (i < line.size() && IsNameChar(line[i])) ++i;
  sample.name = std::string(line.substr(0, i));
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const size_t name_start = i;
      if (i >= line.size() || !IsNameStart(line[i])) {
        return absl::InternalError("bad label name");
      }
      while (i < line.size() && IsNameChar(line[i])) ++i;
      std::string label(line.substr(name_start, i - name_start));
      if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
        return absl::InternalError("expected =\" after a label name");
      }
      i += 2;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        const char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < line.size()) {
          const char e = line[i++];
          value.push_back(e == 'n' ? '\n' : e);  // \\ -> \, \" -> ", \n -> newline
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return absl::InternalError("unterminated label value");
      sample.labels.emplace_back(std::move(label), std::move(value));
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      } else {
        return absl::InternalError("expected , or } in labels");
      }
    }
  }
  if (i >= line.size() || (line[i] != ' ' && line[i] != '\t')) {
    return absl::InternalError("expected a value after the metric");
  }
  std::vector<absl::string_view> rest =
      absl::StrSplit(line.substr(i), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (rest.empty() || rest.size() > 2) return absl::InternalError("expected a value");
  absl::optional<double> value = ParseSampleValue(rest[0]);
  if (!value.has_value()) {
    // Quoted from the scrape: repaired, so the message is valid UTF-8 (logs, gRPC statuses).
    return absl::InternalError(
        absl::StrCat("bad value '", text::RepairUtf8(rest[0].substr(0, 64)), "'"));
  }
  sample.value = *value;
  return sample;
}

absl::StatusOr<SlotsSnapshot> ParseSlotsImpl(absl::string_view body) {
  absl::optional<Json> json = ParseJson(body);
  if (!json.has_value()) return Malformed("/slots", "invalid JSON");
  if (!json->is_array()) return Malformed("/slots", "not a JSON array");
  SlotsSnapshot out;
  for (const Json& slot : *json) {
    if (!slot.is_object()) return Malformed("/slots", "a slot is not an object");
    auto processing = slot.find("is_processing");
    if (processing == slot.end() || !processing->is_boolean()) {
      return Malformed("/slots", "a slot has no boolean 'is_processing'");
    }
    absl::StatusOr<int64_t> n_ctx = Count(slot, "n_ctx", 0, "/slots");
    if (!n_ctx.ok()) return n_ctx.status();
    absl::StatusOr<int64_t> cached = Count(slot, "n_prompt_tokens", 0, "/slots");
    if (!cached.ok()) return cached.status();
    ++out.total;
    if (processing->get<bool>()) ++out.busy;
    out.context_tokens += *n_ctx;
    out.cached_tokens += std::min(*cached, *n_ctx);
  }
  return out;
}

absl::StatusOr<PropsSnapshot> ParsePropsImpl(absl::string_view body) {
  absl::optional<Json> json = ParseJson(body);
  if (!json.has_value()) return Malformed("/props", "invalid JSON");
  if (!json->is_object()) return Malformed("/props", "not a JSON object");
  PropsSnapshot out;
  absl::StatusOr<int64_t> total = Count(*json, "total_slots", -1, "/props");
  if (!total.ok()) return total.status();
  if (*total < 1 || *total > 1 << 16) {
    return Malformed("/props", "'total_slots' is missing or out of range");
  }
  out.total_slots = static_cast<int32_t>(*total);
  auto settings = json->find("default_generation_settings");
  if (settings != json->end() && settings->is_object()) {
    absl::StatusOr<int64_t> n_ctx = Count(*settings, "n_ctx", 0, "/props");
    if (!n_ctx.ok()) return n_ctx.status();
    out.context_per_slot = *n_ctx;
  }
  auto string_member = [&](const char* key) {
    auto it = json->find(key);
    return it != json->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out.model_path = string_member("model_path");
  out.build_info = string_member("build_info");
  out.has_chat_template = !string_member("chat_template").empty();
  return out;
}

}  // namespace

absl::StatusOr<std::vector<PrometheusSample>> ParsePrometheusText(absl::string_view text) {
  std::vector<PrometheusSample> samples;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    absl::ConsumeSuffix(&line, "\r");
    line = absl::StripLeadingAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    absl::StatusOr<PrometheusSample> sample = ParseSampleLine(line);
    if (!sample.ok()) {
      return absl::InternalError(
          absl::StrCat("malformed metrics line ", line_number, ": ", sample.status().message()));
    }
    samples.push_back(*std::move(sample));
  }
  return samples;
}

absl::StatusOr<SlotsSnapshot> ParseSlots(absl::string_view body) {
  try {
    return ParseSlotsImpl(body);
  } catch (const std::exception& e) {
    return Malformed("/slots", e.what());
  }
}

absl::StatusOr<PropsSnapshot> ParseProps(absl::string_view body) {
  try {
    return ParsePropsImpl(body);
  } catch (const std::exception& e) {
    return Malformed("/props", e.what());
  }
}

absl::StatusOr<LlamaMetrics> ParseLlamaMetrics(absl::string_view text) {
  absl::StatusOr<std::vector<PrometheusSample>> samples = ParsePrometheusText(text);
  if (!samples.ok()) return samples.status();
  LlamaMetrics out;
  struct Field {
    absl::string_view name;
    double LlamaMetrics::*member;
  };
  const Field fields[] = {
      {"llamacpp:requests_processing", &LlamaMetrics::requests_processing},
      {"llamacpp:requests_deferred", &LlamaMetrics::requests_deferred},
      {"llamacpp:prompt_tokens_total", &LlamaMetrics::prompt_tokens_total},
      {"llamacpp:tokens_predicted_total", &LlamaMetrics::tokens_predicted_total},
      {"llamacpp:n_decode_total", &LlamaMetrics::n_decode_total},
      {"llamacpp:predicted_tokens_seconds", &LlamaMetrics::predicted_tokens_seconds},
  };
  for (const PrometheusSample& sample : *samples) {
    for (const Field& field : fields) {
      if (sample.name == field.name) {
        // A NaN or negative gauge (nothing measured yet) counts as 0 rather than poisoning sums.
        out.*field.member = std::isfinite(sample.value) && sample.value > 0 ? sample.value : 0;
      }
    }
  }
  return out;
}

LlamaLoad CombineLoad(const absl::optional<SlotsSnapshot>& slots,
                      const absl::optional<PropsSnapshot>& props,
                      const absl::optional<LlamaMetrics>& metrics) {
  LlamaLoad load;
  if (slots.has_value()) {
    load.has_slots = true;
    load.slots_total = slots->total;
    load.slots_busy = slots->busy;
    if (slots->context_tokens > 0) {
      load.kv_cache_usage_ratio = static_cast<float>(
          std::clamp(static_cast<double>(slots->cached_tokens) / slots->context_tokens, 0.0, 1.0));
    }
  } else if (props.has_value()) {
    load.slots_total = props->total_slots;
  }
  if (metrics.has_value()) {
    load.has_metrics = true;
    load.deferred_requests = static_cast<int32_t>(std::min(metrics->requests_deferred, 1e9));
    if (!slots.has_value()) {
      load.slots_busy = static_cast<int32_t>(std::min(metrics->requests_processing, 1e9));
    }
  }
  if (load.slots_total > 0) load.slots_busy = std::min(load.slots_busy, load.slots_total);
  return load;
}

}  // namespace tiermesh::worker
