// What the router remembers of recent requests, so that a caller can ask for
// a better answer: `Chat` with `escalate_from=<request id>` re-runs that
// request at the tier above the one that served it. An entry is the tier that
// served, the caller's tenant and the request itself (messages, tools, tool
// choice, params), so that an escalation may send no messages and reuse the
// original ones.
//
//   InMemoryRequestHistory history({.max_entries = 100000, .max_bytes = 64 << 20,
//                                   .ttl = absl::Hours(1)}, &clock);
//   history.Record("acme", "req-1", {"local_fast", request_without_hints});  // after serving
//   absl::StatusOr<HistoryEntry> e = history.Find("acme", "req-1");
//   // NOT_FOUND: unknown, expired, evicted, or recorded for another tenant
//
// Ids are scoped by tenant (client-chosen ids are unique per tenant only), so
// one tenant can never see, or escalate, another's request: both read as
// NOT_FOUND. Bounds: entries expire `ttl` after they were recorded and the
// oldest go first when `max_entries` or `max_bytes` (the requests' serialized
// sizes) would be exceeded; a request larger than max_bytes / 16 is recorded
// without its body (an escalation of it must resend the messages). The store
// is in memory and per router replica: a shared store for several replicas
// can implement the same interface later.
#ifndef TIERMESH_SERVICES_ROUTER_REQUEST_HISTORY_H_
#define TIERMESH_SERVICES_ROUTER_REQUEST_HISTORY_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "services/router/clock.h"
#include "tiermesh/v1/router.pb.h"

namespace tiermesh::router {

struct HistoryEntry {
  // The tier of the attempt that served the request.
  std::string tier;
  // The request as it may be re-run: messages, tools, tool choice, params
  // (hints, escalate_from and request_id are not kept). Empty messages: the
  // body was too large to keep.
  v1::ChatRequest request;
  absl::Time recorded_at;
};

class RequestHistory {
 public:
  virtual ~RequestHistory() = default;
  // Remembers (or replaces) `request_id` of `tenant`.
  virtual void Record(absl::string_view tenant, absl::string_view request_id,
                      HistoryEntry entry) = 0;
  // NOT_FOUND when there is no live entry for this tenant and id.
  [[nodiscard]] virtual absl::StatusOr<HistoryEntry> Find(absl::string_view tenant,
                                                          absl::string_view request_id) const = 0;
};

struct RequestHistoryOptions {
  size_t max_entries = 100000;
  size_t max_bytes = size_t{64} << 20;
  absl::Duration ttl = absl::Hours(1);
};

// The part of a request worth keeping for an escalation: messages, tools,
// tool choice and params.
v1::ChatRequest ReplayableRequest(const v1::ChatRequest& request);

// The request an escalation runs: its own body when it sends messages (with
// its hints), else the recorded body with the escalation's hints.
// FAILED_PRECONDITION when neither has messages (the body was not kept).
[[nodiscard]] absl::StatusOr<v1::ChatRequest> EscalationRequest(const v1::ChatRequest& escalation,
                                                                const HistoryEntry& original);

// Bounded, thread-safe, in memory. `clock` must outlive it.
class InMemoryRequestHistory final : public RequestHistory {
 public:
  InMemoryRequestHistory(const RequestHistoryOptions& options, const Clock* clock);

  void Record(absl::string_view tenant, absl::string_view request_id, HistoryEntry entry) override;
  absl::StatusOr<HistoryEntry> Find(absl::string_view tenant,
                                    absl::string_view request_id) const override;

  size_t size() const;
  size_t bytes() const;

 private:
  using Key = std::pair<std::string, std::string>;  // tenant, request id
  struct Stored {
    HistoryEntry entry;
    size_t bytes = 0;
    uint64_t sequence = 0;  // which insertion this is, to match the FIFO
  };
  // Drops expired entries and, while over a bound, the oldest.
  void EvictLocked(absl::Time now, size_t incoming_bytes);

  const RequestHistoryOptions options_;
  const Clock* const clock_;
  mutable std::mutex mu_;
  std::map<Key, Stored> entries_;
  // Insertion order (key, sequence); stale pairs (replaced entries) are skipped.
  std::deque<std::pair<Key, uint64_t>> order_;
  size_t bytes_ = 0;
  uint64_t next_sequence_ = 0;
};

}  // namespace tiermesh::router

#endif  // TIERMESH_SERVICES_ROUTER_REQUEST_HISTORY_H_
