#include "services/classifier/model_store.h"

#include <sys/stat.h>

#include <utility>

namespace tiermesh::classifier {

absl::StatusOr<std::unique_ptr<ModelStore>> ModelStore::Open(std::string path) {
  const FileStamp stamp = Stamp(path);
  absl::StatusOr<std::shared_ptr<const Model>> model = LoadModelFile(path);
  if (!model.ok()) return model.status();
  auto store = std::make_unique<ModelStore>(std::move(path), *std::move(model));
  absl::MutexLock lock(&store->mu_);
  store->last_attempt_ = stamp;
  return store;
}

ModelStore::ModelStore(std::string path, std::shared_ptr<const Model> initial)
    : path_(std::move(path)), model_(std::move(initial)) {}

std::shared_ptr<const Model> ModelStore::current() const {
  absl::MutexLock lock(&mu_);
  return model_;
}

ModelStore::FileStamp ModelStore::Stamp(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_ino), static_cast<int64_t>(st.st_size),
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

absl::Status ModelStore::Reload() {
  const FileStamp stamp = Stamp(path_);
  // Load outside the lock: readers keep the old model meanwhile.
  absl::StatusOr<std::shared_ptr<const Model>> model = LoadModelFile(path_);
  absl::MutexLock lock(&mu_);
  last_attempt_ = stamp;
  if (!model.ok()) return model.status();
  model_ = *std::move(model);
  return absl::OkStatus();
}

absl::StatusOr<bool> ModelStore::ReloadIfChanged() {
  const FileStamp stamp = Stamp(path_);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == last_attempt_) return false;
  }
  if (absl::Status s = Reload(); !s.ok()) return s;
  return true;
}

}  // namespace tiermesh::classifier
