#include "services/common/logging/trace_context.h"

#include <utility>

namespace tiermesh::logging {
namespace {

// One pointer per thread to the innermost live ScopedTraceIds' ids. It is the
// only thread-local in logging, and it is written only by ScopedTraceIds.
thread_local const TraceIds* current_trace_ids = nullptr;

}  // namespace

const TraceIds* CurrentTraceIds() { return current_trace_ids; }

ScopedTraceIds::ScopedTraceIds(std::string trace_id, std::string span_id)
    : ids_{std::move(trace_id), std::move(span_id)}, previous_(current_trace_ids) {
  // Empty ids mean "no trace in this scope" (a span that is not sampled and
  // has no parent), so that lines do not carry "trace_id":"".
  current_trace_ids = ids_.trace_id.empty() ? nullptr : &ids_;
}

ScopedTraceIds::~ScopedTraceIds() { current_trace_ids = previous_; }

}  // namespace tiermesh::logging
