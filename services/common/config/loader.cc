#include "services/common/config/loader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/parser.h"

#include "services/common/config/schema.h"

namespace tiermesh::config {
namespace {

// Records where each document starts and nothing else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> starts;
};

// yaml-cpp 0.7 never gets past some tokens at the start of a document (a ',' outside a flow
// collection, e.g. a stray comma at the start of a line): its parser reports a new document at
// the same position forever, so YAML::LoadAll would allocate until memory runs out. Walks the
// documents without building them and returns where that happens, if it does.
// Throws YAML::Exception on a syntax error, like LoadAll.
std::optional<YAML::Mark> StuckDocument(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts handler;
  while (parser.HandleNextDocument(handler)) {
    const size_t n = handler.starts.size();
    if (n >= 2 && handler.starts[n - 1].pos == handler.starts[n - 2].pos) {
      return handler.starts[n - 1];
    }
  }
  return std::nullopt;
}

absl::Status ErrnoError(int error, absl::string_view path, absl::string_view action) {
  return absl::Status(absl::ErrnoToStatusCode(error),
                      absl::StrCat(path, ": cannot ", action, ": ", std::strerror(error)));
}

// Closes the descriptor on every return path.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

// Walks the tree expanding scalars. Aliased nodes are shared in yaml-cpp, so
// expanding one twice would expand the *result* again (an env value holding
// "${X}" or "$${" would change meaning, and nested aliases would make the walk
// exponential). Parsed nodes at different places start at different offsets,
// so the source offset identifies a node.
class TreeInterpolator {
 public:
  explicit TreeInterpolator(const EnvLookup& env) : env_(env) {}

  absl::Status Walk(const Node& node) {
    YAML::Node yaml = node.yaml();
    if (!yaml.IsDefined() || yaml.IsNull()) return absl::OkStatus();
    const YAML::Mark mark = yaml.Mark();
    if (!mark.is_null()) {
      auto& seen = yaml.IsScalar() ? scalars_seen_ : containers_seen_;
      if (!seen.insert(mark.pos).second) return absl::OkStatus();
    }
    if (yaml.IsScalar()) {
      if (!absl::StrContains(yaml.Scalar(), '$')) return absl::OkStatus();
      absl::StatusOr<std::string> expanded = InterpolateEnv(yaml.Scalar(), env_);
      if (!expanded.ok()) return node.Error(expanded.status().message());
      yaml = *expanded;  // assigns through the handle: the tree's node changes
      return absl::OkStatus();
    }
    if (yaml.IsSequence()) {
      size_t index = 0;
      for (auto it = yaml.begin(); it != yaml.end(); ++it, ++index) {
        absl::Status s = Walk(node.Element(index, *it));
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }
    if (yaml.IsMap()) {
      for (auto it = yaml.begin(); it != yaml.end(); ++it) {
        const std::string key =
            it->first.IsDefined() && it->first.IsScalar() ? it->first.Scalar() : "?";
        absl::Status s = Walk(node.Child(key, it->second));
        if (!s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  const EnvLookup& env_;
  std::unordered_set<int> scalars_seen_;
  std::unordered_set<int> containers_seen_;
};

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, path, "open");
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, path, "stat");
  if (S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": is a directory, not a file"));
  }
  std::string content;
  char buf[64 * 1024];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, path, "read");
    }
    if (n == 0) break;
    content.append(buf, static_cast<size_t>(n));
    if (content.size() > kMaxConfigFileBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": larger than ", kMaxConfigFileBytes >> 20, " MiB"));
    }
  }
  return content;
}

absl::StatusOr<YAML::Node> ParseYaml(absl::string_view text, absl::string_view source_name) {
  std::vector<YAML::Node> documents;
  const std::string owned(text);
  try {
    if (const std::optional<YAML::Mark> stuck = StuckDocument(owned); stuck.has_value()) {
      const char c = owned[static_cast<size_t>(stuck->pos)];
      const std::string what =
          c > ' ' && c < 0x7F ? absl::StrCat("'", std::string(1, c), "'") : "content";
      return absl::InvalidArgumentError(
          absl::StrCat(source_name, ": line ", stuck->line + 1, ", column ", stuck->column + 1,
                       ": unexpected ", what, " (not inside a [ ] or { } list)"));
    }
    documents = YAML::LoadAll(owned);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    std::string where;
    if (!e.mark.is_null())
      where = absl::StrCat("line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ");
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": ", where, "nested more than ", e.depth() - 1, " levels deep"));
  } catch (const YAML::Exception& e) {
    return internal::FromYamlException(e, source_name);
  }
  if (documents.empty()) return YAML::Node(YAML::NodeType::Null);
  if (documents.size() > 1) {
    // yaml-cpp also starts a new document at top-level content that does not
    // fit the first one (a mapping after a list), so say where it starts.
    std::string where;
    if (documents[1].IsDefined() && !documents[1].Mark().is_null()) {
      where = absl::StrCat(" (the second starts at line ", documents[1].Mark().line + 1,
                           ", column ", documents[1].Mark().column + 1, ")");
    }
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": expected one YAML document, found ", documents.size(), where));
  }
  return documents.front();
}

absl::Status InterpolateEnvInTree(const YAML::Node& root, const EnvLookup& env) {
  try {
    return TreeInterpolator(env).Walk(Node(root));
  } catch (const YAML::Exception& e) {
    return internal::FromYamlException(e, "");
  }
}

namespace internal {

absl::Status WithSource(const absl::Status& status, absl::string_view source) {
  if (status.ok() || source.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(source, ": ", status.message()));
}

absl::Status FromYamlException(const YAML::Exception& e, absl::string_view source) {
  std::string message = source.empty() ? "" : absl::StrCat(source, ": ");
  if (!e.mark.is_null()) {
    absl::StrAppend(&message, "line ", e.mark.line + 1, ", column ", e.mark.column + 1, ": ");
  }
  absl::StrAppend(&message, e.msg.empty() ? std::string(e.what()) : e.msg);
  return absl::InvalidArgumentError(message);
}

}  // namespace internal
}  // namespace tiermesh::config
