// Small file helpers for the classifier tools (the tools read and write
// whole files; the service never uses these).
//
//   ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
//   RETURN_IF_ERROR(WriteWholeFile(out_path, text));   // atomic (tmp + rename)
#ifndef TIERMESH_TOOLS_CLASSIFIER_FILE_UTIL_H_
#define TIERMESH_TOOLS_CLASSIFIER_FILE_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace tiermesh::classifier {

[[nodiscard]] absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
[[nodiscard]] absl::Status WriteWholeFile(const std::string& path, const std::string& contents);
// One compact JSON object per line; invalid UTF-8 is replaced, never thrown.
std::string ToJsonLines(const std::vector<nlohmann::json>& rows);
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace tiermesh::classifier

#endif  // TIERMESH_TOOLS_CLASSIFIER_FILE_UTIL_H_
