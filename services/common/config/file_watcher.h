// Watches one file for hot reload: a background thread polls it every
// `interval` and calls `on_change` with the new content when the content
// really changed. Polling (stat, then a read only when size, mtime, inode or
// device moved) works everywhere inotify does not: Kubernetes ConfigMap
// symlink swaps, bind mounts, network filesystems. A `touch` or a rewrite of
// identical bytes does not call back; a file that is briefly missing during
// an editor's rename does not either (on_error is told once, and polling goes
// on).
//
//   config::FileWatcher::Options options;
//   options.initial_content = text;   // what the service loaded at startup
//   absl::StatusOr<std::unique_ptr<config::FileWatcher>> watcher = config::FileWatcher::Start(
//       path, [&](const std::string& text) {
//         absl::StatusOr<PolicyConfig> next =
//             config::LoadConfigText(text, path, env, ParsePolicyConfig);
//         if (next.ok()) policy.Swap(*std::move(next));        // keep the old one otherwise
//         else logger.Error("config reload rejected", {{"error", next.status()}});
//       }, options);
//   ...                                    // the destructor stops and joins the thread
//
// Callbacks run on the watcher's thread, one at a time; they must not destroy
// the watcher or call PollNow() (that would deadlock).
#ifndef TIERMESH_SERVICES_COMMON_CONFIG_FILE_WATCHER_H_
#define TIERMESH_SERVICES_COMMON_CONFIG_FILE_WATCHER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

namespace tiermesh::config {

class FileWatcher {
 public:
  using OnChange = std::function<void(const std::string& content)>;
  using OnError = std::function<void(const absl::Status& error)>;

  struct Options {
    absl::Duration interval = absl::Seconds(2);
    // Told when the file becomes unreadable (once per outage, not every poll).
    OnError on_error;
    // false: no thread; the owner calls PollNow() (tests, single-threaded tools).
    bool start_thread = true;
    // The content the caller already loaded. When set, it is the baseline
    // instead of what the file holds at Start(), so that an edit made between
    // the caller's load and Start() is reported by the first poll, not lost.
    absl::optional<std::string> initial_content;
  };

  // Reads the file once as the baseline (an error when it cannot be read or
  // `interval` is not positive) and starts polling. `on_change` is required.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FileWatcher>> Start(std::string path,
                                                                          OnChange on_change,
                                                                          Options options);
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FileWatcher>> Start(std::string path,
                                                                          OnChange on_change) {
    return Start(std::move(path), std::move(on_change), Options());
  }

  // Stops the thread (waking it at once) and joins it.
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Checks the file now, on the calling thread; calls on_change (and returns
  // true) when the content changed. An unreadable file is an error.
  [[nodiscard]] absl::StatusOr<bool> PollNow();

  const std::string& path() const { return path_; }

 private:
  struct FileState {
    bool exists = false;
    uint64_t device = 0;
    uint64_t inode = 0;
    int64_t size = -1;
    int64_t mtime_ns = 0;
    size_t content_hash = 0;
    bool operator==(const FileState& o) const {
      return exists == o.exists && device == o.device && inode == o.inode && size == o.size &&
             mtime_ns == o.mtime_ns;
    }
  };

  FileWatcher(std::string path, OnChange on_change, Options options);
  void Run();
  absl::StatusOr<bool> PollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);

  const std::string path_;
  const OnChange on_change_;
  const Options options_;

  absl::Mutex poll_mu_;  // one poll at a time; held while callbacks run
  FileState last_ ABSL_GUARDED_BY(poll_mu_);
  bool error_reported_ ABSL_GUARDED_BY(poll_mu_) = false;

  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

}  // namespace tiermesh::config

#endif  // TIERMESH_SERVICES_COMMON_CONFIG_FILE_WATCHER_H_
