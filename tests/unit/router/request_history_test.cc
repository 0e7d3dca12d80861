// The request history behind escalate_from: tenant scoping, TTL, the entry
// and byte bounds (oldest first), replacement, and what an escalation re-runs.
#include "services/router/request_history.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"
#include "tests/unit/router/fake_clock.h"

namespace tiermesh::router {
namespace {

using testing::FakeClock;

v1::ChatRequest Request(const std::string& text) {
  v1::ChatRequest r;
  v1::ChatMessage* m = r.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content(text);
  return r;
}

HistoryEntry Entry(const std::string& tier, const std::string& text = "hi") {
  HistoryEntry e;
  e.tier = tier;
  e.request = Request(text);
  return e;
}

TEST(RequestHistoryTest, FindsOnlyTheSameTenantsRequest) {
  FakeClock clock;
  InMemoryRequestHistory history({}, &clock);
  history.Record("acme", "req-1", Entry("local_fast", "what is 2+2"));
  absl::StatusOr<HistoryEntry> found = history.Find("acme", "req-1");
  ASSERT_OK(found.status());
  EXPECT_EQ(found->tier, "local_fast");
  EXPECT_EQ(found->request.messages(0).content(), "what is 2+2");
  EXPECT_EQ(found->recorded_at, clock.Now());
  // Another tenant's id reads exactly like an unknown one.
  absl::StatusOr<HistoryEntry> other = history.Find("globex", "req-1");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<HistoryEntry> unknown = history.Find("acme", "req-2");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.status().message(),
            absl::StrReplaceAll(unknown.status().message(), {{"req-2", "req-1"}}));
}

TEST(RequestHistoryTest, SameIdInTwoTenantsAreTwoEntries) {
  FakeClock clock;
  InMemoryRequestHistory history({}, &clock);
  history.Record("acme", "r", Entry("local_fast"));
  history.Record("globex", "r", Entry("cloud_cheap"));
  EXPECT_EQ(history.Find("acme", "r")->tier, "local_fast");
  EXPECT_EQ(history.Find("globex", "r")->tier, "cloud_cheap");
  EXPECT_EQ(history.size(), 2u);
}

TEST(RequestHistoryTest, EntriesExpireAfterTheTtl) {
  FakeClock clock;
  RequestHistoryOptions options;
  options.ttl = absl::Minutes(10);
  InMemoryRequestHistory history(options, &clock);
  history.Record("acme", "old", Entry("local_fast"));
  clock.Advance(absl::Minutes(9));
  history.Record("acme", "new", Entry("local_fast"));
  EXPECT_OK(history.Find("acme", "old").status());
  clock.Advance(absl::Minutes(1));
  EXPECT_EQ(history.Find("acme", "old").status().code(), absl::StatusCode::kNotFound);
  EXPECT_OK(history.Find("acme", "new").status());
  // The next Record drops what expired.
  history.Record("acme", "newer", Entry("local_fast"));
  EXPECT_EQ(history.size(), 2u);
}

TEST(RequestHistoryTest, OldestGoFirstOverTheEntryBound) {
  FakeClock clock;
  RequestHistoryOptions options;
  options.max_entries = 3;
  InMemoryRequestHistory history(options, &clock);
  for (const char* id : {"a", "b", "c", "d"}) history.Record("t", id, Entry("local_fast"));
  EXPECT_EQ(history.size(), 3u);
  EXPECT_EQ(history.Find("t", "a").status().code(), absl::StatusCode::kNotFound);
  for (const char* id : {"b", "c", "d"}) EXPECT_OK(history.Find("t", id).status()) << id;
}

TEST(RequestHistoryTest, ReplacingAnIdMakesItTheNewest) {
  FakeClock clock;
  RequestHistoryOptions options;
  options.max_entries = 2;
  InMemoryRequestHistory history(options, &clock);
  history.Record("t", "a", Entry("local_fast"));
  history.Record("t", "b", Entry("local_fast"));
  history.Record("t", "a", Entry("cloud_cheap"));  // replaces: still two entries
  EXPECT_EQ(history.size(), 2u);
  history.Record("t", "c", Entry("local_fast"));  // evicts b, the oldest now
  EXPECT_EQ(history.Find("t", "b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(history.Find("t", "a")->tier, "cloud_cheap");
  EXPECT_OK(history.Find("t", "c").status());
}

TEST(RequestHistoryTest, ByteBoundEvictsAndHugeBodiesAreNotKept) {
  FakeClock clock;
  RequestHistoryOptions options;
  options.max_bytes = 16 * 1024;  // bodies over 1 KiB are not kept
  InMemoryRequestHistory history(options, &clock);
  history.Record("t", "huge", Entry("local_fast", std::string(4096, 'x')));
  absl::StatusOr<HistoryEntry> huge = history.Find("t", "huge");
  ASSERT_OK(huge.status());
  EXPECT_EQ(huge->tier, "local_fast");
  EXPECT_EQ(huge->request.messages_size(), 0);
  for (int i = 0; i < 100; ++i) {
    history.Record("t", absl::StrCat("r", i), Entry("local_fast", std::string(900, 'y')));
    EXPECT_LE(history.bytes(), options.max_bytes);
  }
  EXPECT_LT(history.size(), 17u);
  EXPECT_OK(history.Find("t", "r99").status());
  EXPECT_EQ(history.Find("t", "r0").status().code(), absl::StatusCode::kNotFound);
}

TEST(RequestHistoryTest, ZeroBoundsKeepNothing) {
  FakeClock clock;
  RequestHistoryOptions options;
  options.max_entries = 0;
  InMemoryRequestHistory history(options, &clock);
  history.Record("t", "a", Entry("local_fast"));
  EXPECT_EQ(history.size(), 0u);
}

// Writers and readers at once, with evictions (for the tsan preset).
TEST(RequestHistoryTest, ConcurrentRecordsFindsAndEvictions) {
  FakeClock clock;
  RequestHistoryOptions options;
  options.max_entries = 50;
  InMemoryRequestHistory history(options, &clock);
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string tenant = absl::StrCat("tenant-", t % 2);
      for (int i = 0; i < 2000; ++i) {
        const std::string id = absl::StrCat("r", i % 80);
        if (i % 3 == 0) {
          history.Record(tenant, id, Entry("local_fast"));
        } else if (history.Find(tenant, id).ok()) {
          ++found;
        }
        if (t == 0 && i % 500 == 0) clock.Advance(absl::Minutes(1));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(history.size(), 50u);
  EXPECT_GT(found.load(), 0);
}

TEST(ReplayableRequestTest, KeepsTheBodyOnly) {
  v1::ChatRequest r = Request("hi");
  r.add_tools()->set_name("get_weather");
  r.mutable_params()->set_max_tokens(50);
  r.mutable_hints()->set_local_only(true);
  r.set_escalate_from("req-0");
  r.set_request_id("req-1");
  const v1::ChatRequest kept = ReplayableRequest(r);
  EXPECT_EQ(kept.messages_size(), 1);
  EXPECT_EQ(kept.tools_size(), 1);
  EXPECT_EQ(kept.params().max_tokens(), 50);
  EXPECT_FALSE(kept.has_hints());
  EXPECT_TRUE(kept.escalate_from().empty());
  EXPECT_TRUE(kept.request_id().empty());
}

TEST(EscalationRequestTest, Table) {
  struct Case {
    const char* name;
    bool escalation_has_messages;
    bool original_has_body;
    absl::StatusCode code;
    const char* content;  // of the first message that runs
  };
  const std::vector<Case> cases = {
      {"own messages win", true, true, absl::StatusCode::kOk, "again, better"},
      {"own messages, body not kept", true, false, absl::StatusCode::kOk, "again, better"},
      {"no messages: replay", false, true, absl::StatusCode::kOk, "original"},
      {"no messages, body not kept", false, false, absl::StatusCode::kFailedPrecondition, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::ChatRequest escalation;
    if (c.escalation_has_messages) escalation = Request("again, better");
    escalation.set_escalate_from("req-1");
    escalation.set_request_id("req-2");
    escalation.mutable_hints()->set_max_tier("cloud_cheap");
    HistoryEntry original;
    original.tier = "local_fast";
    if (c.original_has_body) original.request = Request("original");
    absl::StatusOr<v1::ChatRequest> run = EscalationRequest(escalation, original);
    EXPECT_EQ(run.status().code(), c.code) << run.status();
    if (!run.ok()) continue;
    EXPECT_EQ(run->messages(0).content(), c.content);
    // The escalation's own hints, id and origin always apply.
    EXPECT_EQ(run->hints().max_tier(), "cloud_cheap");
    EXPECT_EQ(run->escalate_from(), "req-1");
    EXPECT_EQ(run->request_id(), "req-2");
  }
}

}  // namespace
}  // namespace tiermesh::router
