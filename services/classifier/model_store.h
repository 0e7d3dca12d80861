// Hot-reloadable holder of the current classifier model. Readers take a
// std::shared_ptr<const Model> snapshot (cheap, lock held only to copy the
// pointer); Reload() builds a whole new immutable Model and swaps it in, or
// keeps the current one when the new file is bad.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ModelStore> store, ModelStore::Open(path));
//   std::shared_ptr<const Model> m = store->current();    // per request
//   absl::Status s = store->Reload();   // e.g. on SIGHUP; !ok: old model still serving
//   absl::StatusOr<bool> swapped = store->ReloadIfChanged();  // from a poll loop
#ifndef TIERMESH_SERVICES_CLASSIFIER_MODEL_STORE_H_
#define TIERMESH_SERVICES_CLASSIFIER_MODEL_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "services/classifier/model.h"

namespace tiermesh::classifier {

class ModelStore {
 public:
  // Loads `path`; fails (with the loader's error) when the first load fails,
  // so a service never starts without a model.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelStore>> Open(std::string path);

  // A store that starts from `initial` (already loaded, e.g. in tests).
  ModelStore(std::string path, std::shared_ptr<const Model> initial);

  ModelStore(const ModelStore&) = delete;
  ModelStore& operator=(const ModelStore&) = delete;

  std::shared_ptr<const Model> current() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const { return path_; }

  // Loads the file again and installs it. On any error the current model
  // keeps serving and the error (naming the file and the problem) is returned.
  [[nodiscard]] absl::Status Reload() ABSL_LOCKS_EXCLUDED(mu_);

  // Reload() only when the file's inode, size or modification time differs from
  // the last attempt (so a bad file is reported once, not on every poll).
  // Returns true when a new model was installed.
  [[nodiscard]] absl::StatusOr<bool> ReloadIfChanged() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // What identifies a version of the file: a rename-into-place changes the
  // inode even when size and (coarse) mtime do not.
  struct FileStamp {
    int64_t inode = -1;
    int64_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const FileStamp& o) const {
      return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  static FileStamp Stamp(const std::string& path);

  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Model> model_ ABSL_GUARDED_BY(mu_);
  FileStamp last_attempt_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tiermesh::classifier

#endif  // TIERMESH_SERVICES_CLASSIFIER_MODEL_STORE_H_
