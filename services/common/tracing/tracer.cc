#include "services/common/tracing/tracer.h"

#include <atomic>
#include <utility>
#include <variant>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

#include "services/common/logging/redact.h"
#include "services/common/status/status.h"

namespace tiermesh::tracing {
namespace {

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void Truncate(std::string* s, size_t max) {
  if (s->size() <= max) return;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>((*s)[cut]) & 0xC0) == 0x80) --cut;
  s->resize(cut);
}

}  // namespace

struct Span::Recording {
  absl::Mutex mu;
  bool ended ABSL_GUARDED_BY(mu) = false;
  SpanData data ABSL_GUARDED_BY(mu);
  std::shared_ptr<SpanProcessor> processor;
  std::function<absl::Time()> clock;
  SpanLimits limits;
};

struct Tracer::State {
  TracerOptions options;
  std::atomic<uint64_t> spans_started{0};
  std::atomic<uint64_t> spans_not_sampled{0};
};

Span::Span(SpanContext context, std::unique_ptr<Recording> recording)
    : context_(std::move(context)), recording_(std::move(recording)) {}

Span::Span() = default;

Span::~Span() { End(); }

Span::Span(Span&& other) noexcept
    : context_(std::move(other.context_)), recording_(std::move(other.recording_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    End();
    context_ = std::move(other.context_);
    recording_ = std::move(other.recording_);
  }
  return *this;
}

bool Span::IsRecording() const {
  if (recording_ == nullptr) return false;
  absl::MutexLock lock(&recording_->mu);
  return !recording_->ended;
}

void Span::SetAttribute(absl::string_view key, AttributeValue value) {
  if (recording_ == nullptr) return;
  if (logging::IsSensitiveKey(key)) {
    value = AttributeValue(logging::kRedacted);
  } else if (const auto* s = std::get_if<std::string>(&value.storage())) {
    std::string redacted = logging::RedactSecrets(*s);
    Truncate(&redacted, recording_->limits.max_string_length);
    value = AttributeValue(std::move(redacted));
  }
  absl::MutexLock lock(&recording_->mu);
  if (recording_->ended) return;
  Attributes& attributes = recording_->data.attributes;
  for (auto& [k, v] : attributes) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  if (attributes.size() >= recording_->limits.max_attributes) {
    ++recording_->data.dropped_attributes;
    return;
  }
  attributes.emplace_back(std::string(key), std::move(value));
}

void Span::AddEvent(absl::string_view name, Attributes attributes) {
  if (recording_ == nullptr) return;
  for (auto& [k, v] : attributes) {
    if (logging::IsSensitiveKey(k)) {
      v = AttributeValue(logging::kRedacted);
    } else if (const auto* s = std::get_if<std::string>(&v.storage())) {
      std::string redacted = logging::RedactSecrets(*s);
      Truncate(&redacted, recording_->limits.max_string_length);
      v = AttributeValue(std::move(redacted));
    }
  }
  const absl::Time now = recording_->clock();
  absl::MutexLock lock(&recording_->mu);
  if (recording_->ended) return;
  if (recording_->data.events.size() >= recording_->limits.max_events) {
    ++recording_->data.dropped_events;
    return;
  }
  recording_->data.events.push_back(SpanEvent{std::string(name), now, std::move(attributes)});
}

void Span::SetStatus(SpanStatusCode code, absl::string_view message) {
  if (recording_ == nullptr) return;
  std::string text;
  if (code == SpanStatusCode::kError) {
    text = logging::RedactSecrets(message);
    Truncate(&text, recording_->limits.max_string_length);
  }
  absl::MutexLock lock(&recording_->mu);
  if (recording_->ended) return;
  recording_->data.status_code = code;
  recording_->data.status_message = std::move(text);
}

void Span::RecordStatus(const absl::Status& status) {
  if (status.ok()) {
    SetStatus(SpanStatusCode::kOk);
  } else {
    SetStatus(SpanStatusCode::kError,
              absl::StrCat(CodeName(status.code()), ": ", status.message()));
  }
}

void Span::End() {
  if (recording_ == nullptr) return;
  const absl::Time now = recording_->clock();
  SpanData data;
  {
    absl::MutexLock lock(&recording_->mu);
    if (recording_->ended) return;
    recording_->ended = true;
    recording_->data.end_time = now;
    data = std::move(recording_->data);
  }
  recording_->processor->OnEnd(std::move(data));
}

logging::ScopedTraceIds Span::Activate() const {
  if (!context_.IsValid()) return logging::ScopedTraceIds("", "");
  return logging::ScopedTraceIds(context_.trace_id.ToHex(), context_.span_id.ToHex());
}

bool ShouldSample(const SamplerConfig& sampler, const SpanContext& parent,
                  const TraceId& trace_id) {
  if (sampler.parent_based && parent.IsValid()) return parent.sampled();
  if (sampler.ratio >= 1.0) return true;
  if (!(sampler.ratio > 0.0)) return false;  // also NaN
  // The low 56 bits, as the W3C "random" trace-id bits and OTel's threshold
  // sampling use them.
  uint64_t randomness = 0;
  for (size_t i = TraceId::kSize - 7; i < TraceId::kSize; ++i) {
    randomness = randomness << 8 | trace_id.bytes()[i];
  }
  // Compare as integers: a double cannot hold every 56-bit value.
  constexpr double kTwoTo56 = 72057594037927936.0;
  const uint64_t threshold = static_cast<uint64_t>(sampler.ratio * kTwoTo56);
  return randomness < threshold;
}

Tracer::Tracer(TracerOptions options) : state_(std::make_shared<State>()) {
  if (!options.id_generator) options.id_generator = std::make_shared<RandomIdGenerator>();
  if (!options.clock) options.clock = [] { return absl::Now(); };
  state_->options = std::move(options);
}

Span Tracer::StartSpan(absl::string_view name, SpanKind kind, const SpanContext& parent) const {
  if (state_ == nullptr) {
    // Disabled: pass the caller's context through untouched.
    return parent.IsValid() ? Span(parent, nullptr) : Span();
  }
  const TracerOptions& options = state_->options;
  SpanContext context;
  context.trace_id = parent.IsValid() ? parent.trace_id : options.id_generator->NewTraceId();
  context.span_id = options.id_generator->NewSpanId();
  context.trace_state = parent.IsValid() ? parent.trace_state : "";
  const bool sampled = ShouldSample(options.sampler, parent, context.trace_id);
  context.trace_flags = sampled ? kSampledFlag : 0;
  if (!sampled || options.processor == nullptr) {
    state_->spans_not_sampled.fetch_add(1, std::memory_order_relaxed);
    return Span(std::move(context), nullptr);
  }
  state_->spans_started.fetch_add(1, std::memory_order_relaxed);
  auto recording = std::make_unique<Span::Recording>();
  recording->processor = options.processor;
  recording->clock = options.clock;
  recording->limits = options.limits;
  {
    absl::MutexLock lock(&recording->mu);
    SpanData& data = recording->data;
    data.name = std::string(name);
    data.kind = kind;
    data.context = context;
    data.context.is_remote = false;
    if (parent.IsValid()) data.parent_span_id = parent.span_id;
    data.start_time = options.clock();
  }
  return Span(std::move(context), std::move(recording));
}

TracerStats Tracer::Stats() const {
  TracerStats stats;
  if (state_ == nullptr) return stats;
  stats.enabled = true;
  stats.spans_started = state_->spans_started.load(std::memory_order_relaxed);
  stats.spans_not_sampled = state_->spans_not_sampled.load(std::memory_order_relaxed);
  if (state_->options.processor != nullptr) stats.processor = state_->options.processor->Stats();
  return stats;
}

absl::Status Tracer::ForceFlush(absl::Duration timeout) const {
  if (state_ == nullptr || state_->options.processor == nullptr) return absl::OkStatus();
  return state_->options.processor->ForceFlush(timeout);
}

absl::Status Tracer::Shutdown(absl::Duration timeout) const {
  if (state_ == nullptr || state_->options.processor == nullptr) return absl::OkStatus();
  return state_->options.processor->Shutdown(timeout);
}

}  // namespace tiermesh::tracing
