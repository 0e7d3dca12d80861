#include "services/common/config/file_watcher.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::tiermesh::testing::StatusIs;

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/tiermesh_watch_XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/policy.yaml";
    Write("v: 1\n");
  }
  void TearDown() override { EXPECT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0); }

  void Write(const std::string& content) {
    // Write a sibling and rename it over: the way editors and ConfigMaps do.
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp, std::ios::trunc) << content;
    ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  }

  // Records every callback.
  FileWatcher::OnChange Recorder() {
    return [this](const std::string& content) {
      absl::MutexLock lock(&mu_);
      seen_.push_back(content);
    };
  }
  std::vector<std::string> Seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

  static FileWatcher::Options Manual() {
    FileWatcher::Options options;
    options.start_thread = false;
    return options;
  }

  std::string dir_;
  std::string path_;
  absl::Mutex mu_;
  std::vector<std::string> seen_;
};

TEST_F(FileWatcherTest, CallsBackOnChangeButNotOnTouch) {
  ASSERT_OK_AND_ASSIGN(auto watcher, FileWatcher::Start(path_, Recorder(), Manual()));
  // The baseline is not a change.
  ASSERT_OK_AND_ASSIGN(bool changed, watcher->PollNow());
  EXPECT_FALSE(changed);

  // A touch moves mtime but not the content.
  struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
  ASSERT_OK_AND_ASSIGN(changed, watcher->PollNow());
  EXPECT_FALSE(changed);
  // Rewriting the same bytes (new inode) is not a change either.
  Write("v: 1\n");
  ASSERT_OK_AND_ASSIGN(changed, watcher->PollNow());
  EXPECT_FALSE(changed);
  EXPECT_THAT(Seen(), IsEmpty());

  Write("v: 2\n");
  ASSERT_OK_AND_ASSIGN(changed, watcher->PollNow());
  EXPECT_TRUE(changed);
  // Same size, different bytes.
  Write("v: 3\n");
  ASSERT_OK_AND_ASSIGN(changed, watcher->PollNow());
  EXPECT_TRUE(changed);
  ASSERT_OK_AND_ASSIGN(changed, watcher->PollNow());
  EXPECT_FALSE(changed);
  EXPECT_THAT(Seen(), ElementsAre("v: 2\n", "v: 3\n"));
}

TEST_F(FileWatcherTest, InitialContentCatchesAnEditBeforeStart) {
  FileWatcher::Options options = Manual();
  options.initial_content = "v: 0\n";  // what the service loaded; the file moved on since
  ASSERT_OK_AND_ASSIGN(auto watcher, FileWatcher::Start(path_, Recorder(), options));
  ASSERT_OK_AND_ASSIGN(bool changed, watcher->PollNow());
  EXPECT_TRUE(changed);
  ASSERT_OK_AND_ASSIGN(changed, watcher->PollNow());
  EXPECT_FALSE(changed);
  EXPECT_THAT(Seen(), ElementsAre("v: 1\n"));

  // The same content as loaded: nothing to report.
  std::vector<std::string>().swap(seen_);
  options.initial_content = "v: 1\n";
  ASSERT_OK_AND_ASSIGN(auto same, FileWatcher::Start(path_, Recorder(), options));
  ASSERT_OK_AND_ASSIGN(changed, same->PollNow());
  EXPECT_FALSE(changed);
  EXPECT_THAT(Seen(), IsEmpty());
}

TEST_F(FileWatcherTest, MissingFileIsAnErrorThenRecovers) {
  ASSERT_OK_AND_ASSIGN(auto watcher, FileWatcher::Start(path_, Recorder(), Manual()));
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  EXPECT_THAT(watcher->PollNow(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("policy.yaml")));
  // Back with the same content: nothing to report.
  Write("v: 1\n");
  ASSERT_OK_AND_ASSIGN(bool changed, watcher->PollNow());
  EXPECT_FALSE(changed);
  EXPECT_THAT(Seen(), IsEmpty());
}

TEST_F(FileWatcherTest, StartValidatesItsArguments) {
  EXPECT_THAT(FileWatcher::Start(dir_ + "/absent.yaml", Recorder(), Manual()),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("absent.yaml")));
  EXPECT_THAT(FileWatcher::Start(path_, nullptr, Manual()),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("on_change")));
  FileWatcher::Options zero = Manual();
  zero.interval = absl::ZeroDuration();
  EXPECT_THAT(FileWatcher::Start(path_, Recorder(), zero),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("interval")));
}

TEST_F(FileWatcherTest, BackgroundThreadDeliversChangesAndErrors) {
  absl::Notification changed;
  absl::Notification errored;
  int errors = 0;  // written only on the watcher thread, read after it stopped
  FileWatcher::Options options;
  options.interval = absl::Milliseconds(5);
  options.on_error = [&](const absl::Status&) {
    ++errors;
    if (!errored.HasBeenNotified()) errored.Notify();
  };
  {
    ASSERT_OK_AND_ASSIGN(auto watcher, FileWatcher::Start(
                                           path_,
                                           [&](const std::string& content) {
                                             if (content == "v: 2\n") changed.Notify();
                                           },
                                           options));
    ASSERT_EQ(::unlink(path_.c_str()), 0);
    ASSERT_TRUE(errored.WaitForNotificationWithTimeout(absl::Seconds(30)));
    Write("v: 2\n");
    ASSERT_TRUE(changed.WaitForNotificationWithTimeout(absl::Seconds(30)));
  }                      // the destructor stops and joins the thread
  EXPECT_EQ(errors, 1);  // once per outage, not once per poll
}

TEST_F(FileWatcherTest, DestructorStopsALongIntervalAtOnce) {
  FileWatcher::Options options;
  options.interval = absl::Hours(1);
  const absl::Time start = absl::Now();
  { ASSERT_OK_AND_ASSIGN(auto watcher, FileWatcher::Start(path_, Recorder(), options)); }
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace tiermesh::config
