#include "services/common/tracing/batch_span_processor.h"

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tiermesh::tracing {

BatchSpanProcessor::BatchSpanProcessor(std::unique_ptr<SpanExporter> exporter,
                                       BatchSpanProcessorOptions options)
    : exporter_(std::move(exporter)), options_(std::move(options)) {}

absl::StatusOr<std::shared_ptr<BatchSpanProcessor>> BatchSpanProcessor::Create(
    std::unique_ptr<SpanExporter> exporter, BatchSpanProcessorOptions options) {
  if (exporter == nullptr)
    return absl::InvalidArgumentError("BatchSpanProcessor needs an exporter");
  if (options.max_queue_size == 0) {
    return absl::InvalidArgumentError("BatchSpanProcessor: max_queue_size must be at least 1");
  }
  if (options.max_export_batch_size == 0 ||
      options.max_export_batch_size > options.max_queue_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("BatchSpanProcessor: max_export_batch_size must be in [1, max_queue_size = ",
                     options.max_queue_size, "], got ", options.max_export_batch_size));
  }
  if (options.schedule_delay <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("BatchSpanProcessor: schedule_delay must be positive, got ",
                     absl::FormatDuration(options.schedule_delay)));
  }
  std::shared_ptr<BatchSpanProcessor> processor(
      new BatchSpanProcessor(std::move(exporter), std::move(options)));
  {
    absl::MutexLock lock(&processor->join_mu_);
    processor->thread_ = std::thread([p = processor.get()] { p->Run(); });
  }
  return processor;
}

BatchSpanProcessor::~BatchSpanProcessor() {
  (void)Shutdown(absl::Seconds(1));  // no-op when the owner already shut down
}

void BatchSpanProcessor::OnEnd(SpanData span) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    ++stats_.spans_dropped_shutdown;
    return;
  }
  if (queue_.size() >= options_.max_queue_size) {
    ++stats_.spans_dropped_queue_full;
    return;
  }
  queue_.push_back(std::move(span));
  ++stats_.spans_enqueued;
  // Wake the thread once, when a full batch is ready (not on every span).
  if (queue_.size() == options_.max_export_batch_size) wake_cv_.Signal();
}

bool BatchSpanProcessor::ShouldWake() const {
  return stopping_ || queue_.size() >= options_.max_export_batch_size ||
         (spans_done_ < flush_target_ && !queue_.empty());
}

void BatchSpanProcessor::Run() {
  absl::Time next_export = absl::Now() + options_.schedule_delay;
  while (true) {
    std::vector<SpanData> batch;
    {
      absl::MutexLock lock(&mu_);
      while (!ShouldWake()) {
        if (wake_cv_.WaitWithDeadline(&mu_, next_export)) break;  // the delay passed
      }
      if (stopping_ && (queue_.empty() || absl::Now() >= shutdown_deadline_)) {
        left_at_shutdown_ = queue_.size();
        stats_.spans_dropped_shutdown += queue_.size();
        spans_done_ += queue_.size();
        queue_.clear();
        stopped_ = true;
        done_cv_.SignalAll();
        return;
      }
      const size_t n = std::min(queue_.size(), options_.max_export_batch_size);
      batch.reserve(n);
      std::move(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n),
                std::back_inserter(batch));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      next_export = absl::Now() + options_.schedule_delay;
    }
    if (batch.empty()) continue;
    const absl::Status status = exporter_->Export(batch);
    ReportExport(status, batch.size());
    absl::MutexLock lock(&mu_);
    ++stats_.export_batches;
    if (status.ok()) {
      stats_.spans_exported += batch.size();
    } else {
      ++stats_.export_failures;
      stats_.spans_dropped_export_failed += batch.size();
    }
    spans_done_ += batch.size();
    done_cv_.SignalAll();
  }
}

void BatchSpanProcessor::ReportExport(const absl::Status& status, size_t spans) {
  if (!status.ok() && !export_failing_) {
    options_.logger.Warn("span export failing; dropping batches until it recovers",
                         {{"error", status}, {"spans", spans}});
  } else if (status.ok() && export_failing_) {
    options_.logger.Info("span export recovered");
  }
  export_failing_ = !status.ok();
}

absl::Status BatchSpanProcessor::ForceFlush(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  const uint64_t target = stats_.spans_enqueued;
  flush_target_ = std::max(flush_target_, target);
  wake_cv_.Signal();
  while (spans_done_ < target && !stopped_) {
    if (done_cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (spans_done_ < target) {
    return absl::DeadlineExceededError(absl::StrCat("span flush: ", target - spans_done_,
                                                    " spans still pending after ",
                                                    absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

absl::Status BatchSpanProcessor::Shutdown(absl::Duration timeout) {
  absl::MutexLock join_lock(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::OkStatus();
    stopping_ = true;
    shutdown_deadline_ = absl::Now() + timeout;
    wake_cv_.Signal();
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  const uint64_t dropped = left_at_shutdown_;
  if (dropped > 0) {
    return absl::DeadlineExceededError(absl::StrCat("span shutdown: ", dropped,
                                                    " spans dropped at the ",
                                                    absl::FormatDuration(timeout), " deadline"));
  }
  return absl::OkStatus();
}

SpanProcessorStats BatchSpanProcessor::Stats() const {
  absl::MutexLock lock(&mu_);
  SpanProcessorStats stats = stats_;
  stats.queue_size = queue_.size();
  return stats;
}

}  // namespace tiermesh::tracing
