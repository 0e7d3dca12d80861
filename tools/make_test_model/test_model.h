// Builds the project's tiny test model: a valid GGUF v3 file with the "llama" architecture,
// random weights and a byte-level vocabulary, small enough (a few hundred KB) that llama-server
// generates thousands of tokens per second with it on a CPU. Its output is gibberish bytes, often
// invalid UTF-8, which is exactly what the worker's UTF-8 repair must cope with.
//
//   TestModelOptions options;   // defaults: 2 layers, n_embd 64, 4 heads, n_ff 128, ctx 4096
//   options.seed = 7;
//   absl::StatusOr<std::string> gguf = BuildTestModel(options);  // same seed, same bytes
//
// Vocabulary (SentencePiece-style "llama" tokenizer, which llama.cpp loads from the token list
// alone): <unk> <s> </s> <|im_start|> <|im_end|>, the 256 byte tokens <0x00>..<0xFF>, "▁" (a
// space) and the user-defined tokens <tool_call> and </tool_call>. The chat template is ChatML
// with Hermes-style <tool_call> blocks, so llama-server renders tools and parses tool calls out
// of its grammar-constrained output.
//
// The rows of the output projection that belong to the special tokens and to <tool_call> and
// </tool_call> are zero, so their logits are always 0 while ordinary tokens score far higher
// (a standard deviation of about 7): the model practically never ends a generation by itself,
// nor starts a tool call. Tests choose: max_tokens, stop strings, or llama-server's logit_bias
// (the request's "logit_bias" or the server's --logit-bias); ForcedToolCallLogitBias() makes a
// request that offers tools with tool_choice "required" end in exactly one well-formed call.
//
// Known llama-server behaviour with this model (llama.cpp v0.5.0, de3ff81): its output bytes are
// often not UTF-8. Without tools llama-server replaces them with U+FFFD; with tools, its tool-call
// parser throws on them (HTTP 500, or an {"error"} event in a stream after some chunks), so tests
// with tools should use ForcedToolCallLogitBias().
#ifndef TIERMESH_TOOLS_MAKE_TEST_MODEL_TEST_MODEL_H_
#define TIERMESH_TOOLS_MAKE_TEST_MODEL_TEST_MODEL_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tiermesh::test_model {

// Token ids of the generated vocabulary.
inline constexpr int32_t kUnkToken = 0;
inline constexpr int32_t kBosToken = 1;
inline constexpr int32_t kEosToken = 2;
inline constexpr int32_t kImStartToken = 3;
inline constexpr int32_t kImEndToken = 4;
inline constexpr int32_t kFirstByteToken = 5;  // <0x00>; byte b is kFirstByteToken + b
inline constexpr int32_t kSpaceToken = kFirstByteToken + 256;
inline constexpr int32_t kToolCallStartToken = kSpaceToken + 1;  // "<tool_call>"
inline constexpr int32_t kToolCallEndToken = kSpaceToken + 2;    // "</tool_call>"
inline constexpr int32_t kVocabSize = kSpaceToken + 3;

enum class WeightType { kF32, kF16 };

struct TestModelOptions {
  uint64_t seed = 1;
  uint32_t n_layer = 2;
  uint32_t n_embd = 64;
  uint32_t n_head = 4;
  uint32_t n_head_kv = 4;
  uint32_t n_ff = 128;
  uint32_t n_ctx_train = 4096;
  WeightType weight_type = WeightType::kF32;
};

// INVALID_ARGUMENT naming the offending field when the options cannot make a loadable model.
[[nodiscard]] absl::Status ValidateOptions(const TestModelOptions& options);

// The whole GGUF file. Deterministic: the same options give the same bytes on every platform
// (the random numbers come from a fixed integer generator, not from <random>'s distributions).
[[nodiscard]] absl::StatusOr<std::string> BuildTestModel(const TestModelOptions& options);

// (token id, bias) pairs for llama-server: <tool_call> +60, </tool_call> +50, </s> +70 and the
// whitespace tokens (space, "\n", "\t", "▁") -50. Under the tool-call grammar that gives one
// call with compact JSON, then the end of the answer (finish_reason "tool_calls"). Use enum or
// short string parameters; free strings fill with random characters. Without a grammar (no
// tools) the +70 on </s> ends the answer at once, so apply it per request, or server-wide only
// on a server used for tool-call tests.
[[nodiscard]] std::vector<std::pair<int32_t, float>> ForcedToolCallLogitBias();

// The Jinja chat template stored in tokenizer.chat_template.
[[nodiscard]] const std::string& TestModelChatTemplate();

// IEEE binary16 bits for `value`, rounded to nearest even (exposed for tests).
[[nodiscard]] uint16_t FloatToHalf(float value);

}  // namespace tiermesh::test_model

#endif  // TIERMESH_TOOLS_MAKE_TEST_MODEL_TEST_MODEL_H_
