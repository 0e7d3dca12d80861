// Fuzz target for the classifier on arbitrary requests (services/classifier): the shipped model
// and the keyword heuristic, on messages and tools cut from the input.
// Input: byte 0 picks options (bit 0: offer a tool made of the last part; bits 1-2: the request
// size limit); the rest is split at NUL bytes into messages whose first byte picks the role.
// Invariants: no crash/UB (sanitizers); a request is refused exactly when ValidateInput refuses
// it; a verdict has a known task, probabilities in [0,1] summing to 1, confidence equal to the
// chosen task's probability, complexity in [0,1], and valid UTF-8 in every reason and PII kind
// (they become protobuf strings).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "services/classifier/classifier.h"
#include "services/classifier/model_store.h"
#include "services/common/text/utf8.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace cls = tiermesh::classifier;

std::shared_ptr<cls::ModelStore> Store() {
  static std::shared_ptr<cls::ModelStore> store = [] {
    absl::StatusOr<std::unique_ptr<cls::ModelStore>> s =
        cls::ModelStore::Open(TIERMESH_CLASSIFIER_MODEL);
    if (!s.ok()) {
      std::fprintf(stderr, "cannot load %s: %s\n", TIERMESH_CLASSIFIER_MODEL,
                   std::string(s.status().message()).c_str());
      std::abort();
    }
    return std::shared_ptr<cls::ModelStore>(std::move(*s));
  }();
  return store;
}

void CheckVerdict(const cls::Classification& c) {
  FUZZ_CHECK(c.task != cls::TaskType::kUnspecified);
  float sum = 0;
  for (float p : c.probabilities) {
    FUZZ_CHECK(p >= 0 && p <= 1);
    sum += p;
  }
  FUZZ_CHECK(std::fabs(sum - 1) < 1e-3);
  FUZZ_CHECK(c.confidence == c.probabilities[cls::TaskIndex(c.task)]);
  FUZZ_CHECK(c.complexity >= 0 && c.complexity <= 1);
  FUZZ_CHECK(c.approx_tokens >= 0);
  FUZZ_CHECK(c.pii_detected == !c.pii_kinds.empty());
  for (const cls::Reason& r : c.reasons) {
    FUZZ_CHECK(tiermesh::text::IsValidUtf8(r.feature));
    FUZZ_CHECK(std::isfinite(r.weight));
  }
  for (const std::string& kind : c.pii_kinds) FUZZ_CHECK(tiermesh::text::IsValidUtf8(kind));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t control = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string_view> parts;
  for (size_t nul = rest.find('\0'); nul != std::string_view::npos; nul = rest.find('\0')) {
    parts.push_back(rest.substr(0, nul));
    rest.remove_prefix(nul + 1);
  }
  parts.push_back(rest);

  cls::ClassifyInput input;
  if ((control & 1) && parts.size() > 1) {
    const std::string_view tool = parts.back();
    parts.pop_back();
    cls::ToolView t;
    t.name = tool.substr(0, 16);
    t.description = tool;
    t.parameters_json_schema = tool.substr(tool.size() / 2);
    input.tools.push_back(t);
  }
  for (std::string_view part : parts) {
    cls::MessageView m;
    if (!part.empty()) {
      m.role = static_cast<cls::Role>(static_cast<uint8_t>(part[0]) % 5);
      part.remove_prefix(1);
    }
    m.content = part;
    m.tool_call_count = m.role == cls::Role::kAssistant ? static_cast<int>(part.size() % 3) : 0;
    input.messages.push_back(m);
  }

  cls::ClassifierOptions options;
  const size_t limits[] = {cls::kDefaultMaxRequestBytes, 64, 1024, 1};
  options.max_request_bytes = limits[(control >> 1) & 3];
  const bool valid = cls::ValidateInput(input, options.max_request_bytes).ok();

  const cls::Classifier learned(options, Store());
  absl::StatusOr<cls::Classification> a = learned.Classify(input);
  FUZZ_CHECK(a.ok() == valid);
  if (a.ok()) CheckVerdict(*a);

  options.mode = cls::ClassifierMode::kHeuristic;
  const cls::Classifier heuristic(options, nullptr);
  absl::StatusOr<cls::Classification> b = heuristic.Classify(input);
  FUZZ_CHECK(b.ok() == valid);
  if (b.ok()) CheckVerdict(*b);
  return 0;
}
