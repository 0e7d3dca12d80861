#include "services/worker/config.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "services/common/config/schema.h"
#include "services/common/status/status.h"

namespace tiermesh::worker {
namespace {

using config::InRange;
using config::Node;
using config::NonEmpty;
using config::ObjectReader;

struct ModelName {
  absl::Status operator()(const std::string& s) const {
    bool ok = !s.empty() && s.size() <= 128;
    for (char c : s) {
      ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                  c == '.' || c == ':');
    }
    if (ok) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("\"", s, "\" is not a model name ([A-Za-z0-9_.:-]{1,128})"));
  }
};

struct Sha256Text {
  absl::Status operator()(const std::string& s) const {
    bool ok = s.size() == 64;
    for (char c : s) ok = ok && absl::ascii_isxdigit(static_cast<unsigned char>(c));
    if (ok) return absl::OkStatus();
    return absl::InvalidArgumentError("must be 64 hex digits (the model file's sha256)");
  }
};

struct HttpUrl {
  absl::Status operator()(const std::string& s) const {
    if ((absl::StartsWith(s, "http://") || absl::StartsWith(s, "https://")) &&
        !absl::EndsWith(s, "/") && s.find_first_of(" \t\r\n") == std::string::npos) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat("\"", s, "\" is not an http(s)://host:port URL without a trailing slash"));
  }
};

struct LlamaServerDefaults {
  std::string binary;
  int threads = 0;
};

struct Backoff {
  absl::Duration initial;
  absl::Duration max;
};

struct FaultInjection {
  double unavailable_ratio = 0;
};

absl::Status Decode(const Node& node, FaultInjection* out) {
  ObjectReader r(node);
  r.Optional("unavailable_ratio", &out->unavailable_ratio, InRange<double>(0.0, 1.0));
  return r.Finish();
}

absl::Status Decode(const Node& node, LlamaServerDefaults* out) {
  ObjectReader r(node);
  r.Optional("binary", &out->binary, NonEmpty());
  r.Optional("threads", &out->threads, InRange<int>(1, 1024));
  return r.Finish();
}

absl::Status Decode(const Node& node, Backoff* out) {
  ObjectReader r(node);
  r.Optional("initial", &out->initial,
             InRange<absl::Duration>(absl::Milliseconds(10), absl::Minutes(10)));
  r.Optional("max", &out->max, InRange<absl::Duration>(absl::Milliseconds(10), absl::Hours(1)));
  return r.Finish();
}

}  // namespace

absl::Status Decode(const Node& node, ManagedModelConfig* out) {
  ObjectReader r(node);
  r.Optional("binary", &out->binary, NonEmpty());
  r.Required("model_path", &out->model_path, NonEmpty());
  r.Optional("sha256", &out->sha256, Sha256Text());
  r.Optional("ctx_size", &out->ctx_size, InRange<int>(64, 1 << 24));
  r.Optional("parallel", &out->parallel, InRange<int>(1, 256));
  r.Optional("n_gpu_layers", &out->n_gpu_layers, InRange<int>(-1, 100000));
  r.Optional("threads", &out->threads, InRange<int>(0, 1024));
  r.Optional("extra_args", &out->extra_args);
  r.Optional("load_timeout", &out->load_timeout,
             InRange<absl::Duration>(absl::Seconds(1), absl::Hours(1)));
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  out->sha256 = absl::AsciiStrToLower(out->sha256);
  for (const std::string& arg : out->extra_args) {
    // The worker owns these: letting them through would break supervision or expose the server.
    for (const char* owned : {"--host", "--port", "--api-key", "--model", "-m", "--parallel",
                              "-np", "--ctx-size", "-c"}) {
      if (arg == owned || absl::StartsWith(arg, absl::StrCat(owned, "="))) {
        return node.Error(absl::StrCat("extra_args: ", owned,
                                       " is set by the worker (use the model's own keys)"));
      }
    }
  }
  if (out->ctx_size < out->parallel * 64) {
    return node.Error(absl::StrCat("ctx_size ", out->ctx_size, " is too small for ",
                                   out->parallel, " slots (at least 64 tokens each)"));
  }
  return absl::OkStatus();
}

absl::Status Decode(const Node& node, ExternalModelConfig* out) {
  ObjectReader r(node);
  r.Required("url", &out->url, HttpUrl());
  r.Optional("api_key", &out->api_key);
  return r.Finish();
}

absl::Status Decode(const Node& node, ModelConfig* out) {
  ObjectReader r(node);
  r.Required("name", &out->name, ModelName());
  const bool has_managed = r.Has("managed");
  const bool has_external = r.Has("external");
  r.Optional("managed", &out->managed_config);
  r.Optional("external", &out->external_config);
  r.Optional("supports_tools", &out->supports_tools);
  r.Optional("max_queue", &out->max_queue, InRange<int>(0, 100000));
  r.Optional("context_window", &out->context_window, InRange<int>(0, 1 << 24));
  r.Validate(has_managed != has_external, "needs exactly one of 'managed' or 'external'");
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  out->managed = has_managed;
  if (out->managed && out->context_window == 0) {
    out->context_window = out->managed_config.ctx_size / out->managed_config.parallel;
  }
  return absl::OkStatus();
}

const ModelConfig* WorkerConfig::Find(const std::string& name) const {
  for (const ModelConfig& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

absl::StatusOr<WorkerConfig> ParseWorkerConfig(const YAML::Node& root) {
  WorkerConfig c;
  const Node node(root);
  ObjectReader r(node);
  r.Optional("default_model", &c.default_model, ModelName());
  r.Optional("max_loaded", &c.max_loaded, InRange<int>(1, 64));
  LlamaServerDefaults llama_server{c.llama_server_binary, c.llama_server_threads};
  r.Optional("llama_server", &llama_server);
  r.Optional("scrape_interval", &c.scrape_interval,
             InRange<absl::Duration>(absl::Milliseconds(50), absl::Minutes(5)));
  r.Optional("load_wait", &c.load_wait,
             InRange<absl::Duration>(absl::ZeroDuration(), absl::Hours(1)));
  r.Optional("stream_idle_timeout", &c.stream_idle_timeout,
             InRange<absl::Duration>(absl::Seconds(1), absl::Hours(1)));
  r.Optional("drain_timeout", &c.drain_timeout,
             InRange<absl::Duration>(absl::ZeroDuration(), absl::Hours(1)));
  Backoff backoff{c.restart_backoff_initial, c.restart_backoff_max};
  r.Optional("restart_backoff", &backoff);
  FaultInjection faults;
  r.Optional("fault_injection", &faults);
  r.Required("models", &c.models, NonEmpty());
  TIERMESH_RETURN_IF_ERROR(r.Finish());
  c.llama_server_binary = llama_server.binary;
  c.fault_unavailable_ratio = faults.unavailable_ratio;
  c.restart_backoff_initial = backoff.initial;
  c.restart_backoff_max = backoff.max;
  c.llama_server_threads = llama_server.threads;
  if (c.restart_backoff_max < c.restart_backoff_initial) {
    return absl::InvalidArgumentError("restart_backoff: max is below initial");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < c.models.size(); ++i) {
    ModelConfig& m = c.models[i];
    if (!names.insert(m.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("models[", i, "].name: duplicate model name '", m.name, "'"));
    }
    if (m.managed) {
      if (m.managed_config.binary.empty()) m.managed_config.binary = c.llama_server_binary;
      if (m.managed_config.threads == 0) m.managed_config.threads = c.llama_server_threads;
    }
  }
  if (c.default_model.empty()) c.default_model = c.models.front().name;
  if (c.Find(c.default_model) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_model: '", c.default_model, "' is not one of the models"));
  }
  return c;
}

}  // namespace tiermesh::worker
