#include "services/common/config/file_watcher.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"

#include "services/common/config/loader.h"

namespace tiermesh::config {
namespace {

absl::Status StatFile(const std::string& path, struct stat* st) {
  if (::stat(path.c_str(), st) != 0) {
    const int error = errno;
    return absl::Status(absl::ErrnoToStatusCode(error),
                        absl::StrCat(path, ": cannot stat: ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

FileWatcher::FileWatcher(std::string path, OnChange on_change, Options options)
    : path_(std::move(path)), on_change_(std::move(on_change)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<FileWatcher>> FileWatcher::Start(std::string path,
                                                                OnChange on_change,
                                                                Options options) {
  if (!on_change) return absl::InvalidArgumentError("FileWatcher needs an on_change callback");
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("FileWatcher interval must be positive, got ",
                                                   absl::FormatDuration(options.interval)));
  }
  std::unique_ptr<FileWatcher> watcher(
      new FileWatcher(std::move(path), std::move(on_change), std::move(options)));
  {
    absl::MutexLock lock(&watcher->poll_mu_);
    // The first poll sets the baseline; the content the caller already loaded
    // is not reported as a change.
    struct stat st;
    absl::Status s = StatFile(watcher->path_, &st);
    if (!s.ok()) return s;
    absl::StatusOr<std::string> content = ReadFileToString(watcher->path_);
    if (!content.ok()) return content.status();
    watcher->last_ =
        FileState{true,
                  static_cast<uint64_t>(st.st_dev),
                  static_cast<uint64_t>(st.st_ino),
                  static_cast<int64_t>(st.st_size),
                  static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                  std::hash<std::string>{}(*content)};
    if (watcher->options_.initial_content.has_value()) {
      // Compare the first poll's content with what the caller loaded.
      watcher->last_.exists = false;
      watcher->last_.content_hash = std::hash<std::string>{}(*watcher->options_.initial_content);
    }
  }
  if (watcher->options_.start_thread) {
    watcher->thread_ = std::thread([w = watcher.get()] { w->Run(); });
  }
  return watcher;
}

FileWatcher::~FileWatcher() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<bool> FileWatcher::PollNow() {
  absl::MutexLock lock(&poll_mu_);
  return PollLocked();
}

absl::StatusOr<bool> FileWatcher::PollLocked() {
  struct stat st;
  absl::Status s = StatFile(path_, &st);
  if (!s.ok()) {
    last_.exists = false;  // when it comes back, look at its content again
    return s;
  }
  FileState now{true,
                static_cast<uint64_t>(st.st_dev),
                static_cast<uint64_t>(st.st_ino),
                static_cast<int64_t>(st.st_size),
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                last_.content_hash};
  if (now == last_) return false;
  absl::StatusOr<std::string> content = ReadFileToString(path_);
  if (!content.ok()) {
    last_.exists = false;
    return content.status();
  }
  now.content_hash = std::hash<std::string>{}(*content);
  const bool changed = now.content_hash != last_.content_hash;
  last_ = now;
  if (changed) on_change_(*content);
  return changed;
}

void FileWatcher::Run() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mu_);
      stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.interval);
      if (stop_) return;
    }
    absl::MutexLock lock(&poll_mu_);
    absl::StatusOr<bool> polled = PollLocked();
    if (polled.ok()) {
      error_reported_ = false;
    } else if (!error_reported_) {
      error_reported_ = true;
      if (options_.on_error) options_.on_error(polled.status());
    }
  }
}

}  // namespace tiermesh::config
