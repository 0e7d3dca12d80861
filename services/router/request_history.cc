#include "services/router/request_history.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tiermesh::router {
namespace {

// Map node, strings and bookkeeping of one entry beyond the request body.
constexpr size_t kEntryOverheadBytes = 160;

}  // namespace

v1::ChatRequest ReplayableRequest(const v1::ChatRequest& request) {
  v1::ChatRequest out;
  *out.mutable_messages() = request.messages();
  *out.mutable_tools() = request.tools();
  *out.mutable_tool_choice() = request.tool_choice();
  *out.mutable_params() = request.params();
  return out;
}

absl::StatusOr<v1::ChatRequest> EscalationRequest(const v1::ChatRequest& escalation,
                                                  const HistoryEntry& original) {
  if (escalation.messages_size() > 0) return escalation;
  if (original.request.messages_size() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("escalate_from: request '", escalation.escalate_from(),
                     "' was too large to keep; send its messages with the escalation"));
  }
  v1::ChatRequest out = original.request;
  *out.mutable_hints() = escalation.hints();
  out.set_escalate_from(escalation.escalate_from());
  out.set_request_id(escalation.request_id());
  return out;
}

InMemoryRequestHistory::InMemoryRequestHistory(const RequestHistoryOptions& options,
                                               const Clock* clock)
    : options_(options), clock_(clock) {}

void InMemoryRequestHistory::EvictLocked(absl::Time now, size_t incoming_bytes) {
  while (!order_.empty()) {
    const auto& [key, sequence] = order_.front();
    auto it = entries_.find(key);
    if (it == entries_.end() || it->second.sequence != sequence) {
      order_.pop_front();  // replaced or already gone
      continue;
    }
    const bool expired = now - it->second.entry.recorded_at >= options_.ttl;
    const bool over =
        entries_.size() + 1 > options_.max_entries || bytes_ + incoming_bytes > options_.max_bytes;
    if (!expired && !over) break;
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    order_.pop_front();
  }
}

void InMemoryRequestHistory::Record(absl::string_view tenant, absl::string_view request_id,
                                    HistoryEntry entry) {
  if (options_.max_entries == 0 || options_.max_bytes == 0) return;
  size_t body = entry.request.ByteSizeLong();
  if (body > options_.max_bytes / 16) {
    entry.request.Clear();  // the tier is still worth keeping
    body = 0;
  }
  const size_t size =
      body + tenant.size() + request_id.size() + entry.tier.size() + kEntryOverheadBytes;
  if (size > options_.max_bytes) return;
  std::lock_guard<std::mutex> lock(mu_);
  const absl::Time now = clock_->Now();
  entry.recorded_at = now;
  Key key{std::string(tenant), std::string(request_id)};
  auto existing = entries_.find(key);
  if (existing != entries_.end()) {
    bytes_ -= existing->second.bytes;
    entries_.erase(existing);  // its order_ pair turns stale
  }
  EvictLocked(now, size);
  const uint64_t sequence = next_sequence_++;
  order_.emplace_back(key, sequence);
  bytes_ += size;
  entries_.emplace(std::move(key), Stored{std::move(entry), size, sequence});
}

absl::StatusOr<HistoryEntry> InMemoryRequestHistory::Find(absl::string_view tenant,
                                                          absl::string_view request_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(Key(std::string(tenant), std::string(request_id)));
  if (it == entries_.end() || clock_->Now() - it->second.entry.recorded_at >= options_.ttl) {
    // The same answer for "never existed", "expired" and "another tenant's".
    return absl::NotFoundError(
        absl::StrCat("escalate_from: no recent request '", request_id,
                     "' of this caller (unknown, expired or evicted; requests are kept for ",
                     absl::FormatDuration(options_.ttl), ")"));
  }
  return it->second.entry;
}

size_t InMemoryRequestHistory::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

size_t InMemoryRequestHistory::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace tiermesh::router
