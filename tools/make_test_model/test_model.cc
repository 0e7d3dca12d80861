#include "tools/make_test_model/test_model.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "services/common/status/status.h"
#include "tools/make_test_model/gguf.h"

namespace tiermesh::test_model {
namespace {

// llama.cpp's token types (enum llama_token_type).
constexpr int32_t kTokenTypeNormal = 1;
constexpr int32_t kTokenTypeUnknown = 2;
constexpr int32_t kTokenTypeControl = 3;
constexpr int32_t kTokenTypeUserDefined = 4;
constexpr int32_t kTokenTypeByte = 6;

// llama.cpp's general.file_type values (enum llama_ftype).
constexpr uint32_t kFileTypeAllF32 = 0;
constexpr uint32_t kFileTypeMostlyF16 = 1;

// Uniform amplitude of the output projection. Logits of ordinary tokens then have a standard
// deviation of about amplitude * sqrt(n_embd / 3) (~7 for n_embd 64), so the special tokens'
// constant logit of 0 is always far below the best token and removed by llama-server's default
// min_p filter.
constexpr float kOutputAmplitude = 1.5f;

// SplitMix64: a tiny, well-mixed generator whose output is fixed by its definition, unlike the
// distributions in <random>, whose results differ between standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [-amplitude, amplitude).
  float Uniform(float amplitude) {
    const double unit = static_cast<double>(Next() >> 11) * 0x1.0p-53;  // [0, 1)
    return static_cast<float>((2.0 * unit - 1.0) * amplitude);
  }

 private:
  uint64_t state_;
};

uint64_t Fnv1a(absl::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// Each tensor gets its own stream (seed and name), so its values do not depend on how many
// tensors came before it: a model with more layers shares the first layers' weights.
std::vector<float> RandomValues(uint64_t seed, absl::string_view name, size_t count,
                                float amplitude) {
  SplitMix64 rng(seed ^ Fnv1a(name));
  std::vector<float> values(count);
  for (float& v : values) v = rng.Uniform(amplitude);
  return values;
}

std::string Encode(const std::vector<float>& values, WeightType type) {
  std::string out;
  if (type == WeightType::kF32) {
    out.resize(values.size() * 4);
    for (size_t i = 0; i < values.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &values[i], sizeof(bits));
      for (int b = 0; b < 4; ++b) out[i * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
    }
  } else {
    out.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t bits = FloatToHalf(values[i]);
      out[i * 2] = static_cast<char>(bits & 0xff);
      out[i * 2 + 1] = static_cast<char>(bits >> 8);
    }
  }
  return out;
}

GgmlType ToGgml(WeightType type) {
  return type == WeightType::kF32 ? GgmlType::kF32 : GgmlType::kF16;
}

void AddVocabulary(GgufWriter& writer) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
  std::vector<int32_t> types = {kTokenTypeUnknown, kTokenTypeControl, kTokenTypeControl,
                                kTokenTypeControl, kTokenTypeControl};
  for (int byte = 0; byte < 256; ++byte) {
    // llama.cpp finds byte tokens by exactly this spelling (upper-case hex).
    tokens.push_back(absl::StrFormat("<0x%02X>", byte));
    types.push_back(kTokenTypeByte);
  }
  tokens.push_back("\xe2\x96\x81");  // U+2581, SentencePiece's space
  types.push_back(kTokenTypeNormal);
  // User-defined tokens are matched as one token wherever the text occurs, like the tool-call
  // markers of real Hermes-style models.
  tokens.push_back("<tool_call>");
  types.push_back(kTokenTypeUserDefined);
  tokens.push_back("</tool_call>");
  types.push_back(kTokenTypeUserDefined);
  const std::vector<float> scores(tokens.size(), 0.0f);

  writer.AddString("tokenizer.ggml.model", "llama");
  writer.AddStringArray("tokenizer.ggml.tokens", tokens);
  writer.AddFloat32Array("tokenizer.ggml.scores", scores);
  writer.AddInt32Array("tokenizer.ggml.token_type", types);
  writer.AddUint32("tokenizer.ggml.unknown_token_id", kUnkToken);
  writer.AddUint32("tokenizer.ggml.bos_token_id", kBosToken);
  writer.AddUint32("tokenizer.ggml.eos_token_id", kEosToken);
  writer.AddBool("tokenizer.ggml.add_bos_token", true);
  writer.AddBool("tokenizer.ggml.add_eos_token", false);
  // SentencePiece would otherwise put a "▁" before text that follows a special token
  // ("<|im_start|>▁assistant"), which breaks llama-server's tool-call grammar: it replays the
  // generation prompt "<|im_start|>assistant\n" through the grammar and fails on the space.
  writer.AddBool("tokenizer.ggml.add_space_prefix", false);
  writer.AddString("tokenizer.chat_template", TestModelChatTemplate());
}

}  // namespace

uint16_t FloatToHalf(float value) {
  uint32_t f;
  std::memcpy(&f, &value, sizeof(f));
  const uint32_t sign = (f >> 16) & 0x8000;
  const uint32_t exponent = (f >> 23) & 0xff;
  uint32_t mantissa = f & 0x7fffff;
  if (exponent == 0xff) {  // infinity or NaN (NaN stays NaN: keep a mantissa bit set)
    return static_cast<uint16_t>(sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >> 13) : 0));
  }
  const int32_t half_exponent = static_cast<int32_t>(exponent) - 127 + 15;
  if (half_exponent >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);  // overflow: infinity
  if (half_exponent <= 0) {  // a half subnormal, or zero
    if (half_exponent < -10) return static_cast<uint16_t>(sign);
    mantissa |= 0x800000;
    const int shift = 14 - half_exponent;
    uint32_t half_mantissa = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half_mantissa & 1) != 0)) ++half_mantissa;
    return static_cast<uint16_t>(sign | half_mantissa);
  }
  uint32_t half = sign | (static_cast<uint32_t>(half_exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1) != 0)) ++half;
  return static_cast<uint16_t>(half);
}

std::vector<std::pair<int32_t, float>> ForcedToolCallLogitBias() {
  return {{kToolCallStartToken, 60.0f},
          {kToolCallEndToken, 50.0f},
          {kEosToken, 70.0f},
          {kFirstByteToken + ' ', -50.0f},
          {kFirstByteToken + '\n', -50.0f},
          {kFirstByteToken + '\t', -50.0f},
          {kSpaceToken, -50.0f}};
}

const std::string& TestModelChatTemplate() {
  // ChatML; with tools, a system block lists them and assistant tool calls are rendered as
  // Hermes-style <tool_call>{json}</tool_call> blocks, a format llama-server's template analysis
  // recognises. No newline follows <tool_call>: llama-server's grammar lets free text run until
  // the exact call opener, so with "<tool_call>" alone as the opener, the <tool_call> token
  // itself commits the output to a call (which a logit_bias on it can force).
  // Written with {{- }} expressions only, so no stray template whitespace reaches the prompt.
  static const std::string* const kTemplate = new std::string(
      "{%- if tools -%}"
      "{{- '<|im_start|>system\\n' -}}"
      "{%- if messages[0].role == 'system' -%}{{- messages[0].content + '\\n\\n' -}}{%- endif -%}"
      "{{- '# Tools\\n\\nYou may call functions. Their signatures:\\n<tools>' -}}"
      "{%- for tool in tools -%}{{- '\\n' + (tool | tojson) -}}{%- endfor -%}"
      "{{- '\\n</tools>\\n\\nTo call one, answer with <tool_call>"
      "{\"name\": <function-name>, \"arguments\": <args-json-object>}</tool_call>"
      "<|im_end|>\\n' -}}"
      "{%- elif messages[0].role == 'system' -%}"
      "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' -}}"
      "{%- endif -%}"
      "{%- for message in messages -%}"
      "{%- if message.role == 'system' and loop.first -%}"
      "{%- elif message.role == 'assistant' and message.tool_calls -%}"
      "{{- '<|im_start|>assistant' -}}"
      "{%- if message.content -%}{{- '\\n' + message.content -}}{%- endif -%}"
      "{%- for tool_call in message.tool_calls -%}"
      "{%- if tool_call.function is defined -%}{%- set tool_call = tool_call.function -%}"
      "{%- endif -%}"
      "{{- '\\n<tool_call>{\"name\": \"' + tool_call.name + '\", \"arguments\": ' -}}"
      "{{- tool_call.arguments | tojson -}}"
      "{{- '}</tool_call>' -}}"
      "{%- endfor -%}"
      "{{- '<|im_end|>\\n' -}}"
      "{%- elif message.role == 'tool' -%}"
      "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + "
      "'\\n</tool_response><|im_end|>\\n' -}}"
      "{%- else -%}"
      "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}"
      "{%- endif -%}"
      "{%- endfor -%}"
      "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}");
  return *kTemplate;
}

absl::Status ValidateOptions(const TestModelOptions& o) {
  auto out_of_range = [](absl::string_view field, uint64_t value, uint64_t lo, uint64_t hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", value, "; it must be in [", lo, ", ", hi, "]"));
  };
  if (o.n_layer < 1 || o.n_layer > 64) return out_of_range("layers", o.n_layer, 1, 64);
  if (o.n_embd < 8 || o.n_embd > 4096) return out_of_range("embd", o.n_embd, 8, 4096);
  if (o.n_head < 1 || o.n_head > 128) return out_of_range("heads", o.n_head, 1, 128);
  if (o.n_head_kv < 1 || o.n_head_kv > o.n_head) {
    return out_of_range("kv_heads", o.n_head_kv, 1, o.n_head);
  }
  if (o.n_ff < 1 || o.n_ff > 16384) return out_of_range("ff", o.n_ff, 1, 16384);
  if (o.n_ctx_train < 16 || o.n_ctx_train > (1u << 20)) {
    return out_of_range("ctx", o.n_ctx_train, 16, 1u << 20);
  }
  if (o.n_embd % o.n_head != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("embd (", o.n_embd, ") must be a multiple of heads (", o.n_head, ")"));
  }
  if ((o.n_embd / o.n_head) % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the head size embd/heads (", o.n_embd / o.n_head, ") must be even for RoPE"));
  }
  if (o.n_head % o.n_head_kv != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("heads (", o.n_head, ") must be a multiple of kv_heads (", o.n_head_kv, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BuildTestModel(const TestModelOptions& o) {
  TIERMESH_RETURN_IF_ERROR(ValidateOptions(o));
  const int64_t n_embd = o.n_embd;
  const int64_t n_ff = o.n_ff;
  const int64_t head_dim = o.n_embd / o.n_head;
  const int64_t n_embd_kv = head_dim * o.n_head_kv;
  const GgmlType matrix_type = ToGgml(o.weight_type);

  GgufWriter writer;
  writer.AddString("general.architecture", "llama");
  writer.AddString("general.name", "tiermesh-test-model");
  writer.AddUint32("general.file_type",
                   o.weight_type == WeightType::kF32 ? kFileTypeAllF32 : kFileTypeMostlyF16);
  writer.AddUint64("tiermesh.test_model.seed", o.seed);
  writer.AddUint32("llama.vocab_size", kVocabSize);
  writer.AddUint32("llama.context_length", o.n_ctx_train);
  writer.AddUint32("llama.embedding_length", o.n_embd);
  writer.AddUint32("llama.block_count", o.n_layer);
  writer.AddUint32("llama.feed_forward_length", o.n_ff);
  writer.AddUint32("llama.attention.head_count", o.n_head);
  writer.AddUint32("llama.attention.head_count_kv", o.n_head_kv);
  writer.AddUint32("llama.rope.dimension_count", static_cast<uint32_t>(head_dim));
  writer.AddFloat32("llama.rope.freq_base", 10000.0f);
  writer.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  AddVocabulary(writer);
  TIERMESH_RETURN_IF_ERROR(writer.status());

  // Norm weights are always F32 (as converters write them); matrices use the chosen type.
  auto add_norm = [&](const std::string& name) {
    return writer.AddTensor(name, {n_embd}, GgmlType::kF32,
                            Encode(std::vector<float>(n_embd, 1.0f), WeightType::kF32));
  };
  // Amplitude sqrt(3 / fan_in) gives unit-variance outputs for unit-variance inputs, so that
  // activations neither vanish nor blow up through the layers.
  auto add_matrix = [&](const std::string& name, int64_t fan_in, int64_t fan_out) {
    const float amplitude = static_cast<float>(std::sqrt(3.0 / static_cast<double>(fan_in)));
    return writer.AddTensor(
        name, {fan_in, fan_out}, matrix_type,
        Encode(RandomValues(o.seed, name, fan_in * fan_out, amplitude), o.weight_type));
  };

  TIERMESH_RETURN_IF_ERROR(writer.AddTensor(
      "token_embd.weight", {n_embd, kVocabSize}, matrix_type,
      Encode(RandomValues(o.seed, "token_embd.weight", n_embd * kVocabSize, 1.0f), o.weight_type)));
  TIERMESH_RETURN_IF_ERROR(add_norm("output_norm.weight"));
  std::vector<float> output =
      RandomValues(o.seed, "output.weight", n_embd * kVocabSize, kOutputAmplitude);
  for (int32_t token : {kUnkToken, kBosToken, kEosToken, kImStartToken, kImEndToken,
                        kToolCallStartToken, kToolCallEndToken}) {
    std::fill(output.begin() + token * n_embd, output.begin() + (token + 1) * n_embd, 0.0f);
  }
  TIERMESH_RETURN_IF_ERROR(writer.AddTensor("output.weight", {n_embd, kVocabSize}, matrix_type,
                                            Encode(output, o.weight_type)));

  for (uint32_t layer = 0; layer < o.n_layer; ++layer) {
    const std::string prefix = absl::StrCat("blk.", layer, ".");
    TIERMESH_RETURN_IF_ERROR(add_norm(prefix + "attn_norm.weight"));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "attn_q.weight", n_embd, n_embd));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "attn_k.weight", n_embd, n_embd_kv));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "attn_v.weight", n_embd, n_embd_kv));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "attn_output.weight", n_embd, n_embd));
    TIERMESH_RETURN_IF_ERROR(add_norm(prefix + "ffn_norm.weight"));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "ffn_gate.weight", n_embd, n_ff));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "ffn_down.weight", n_ff, n_embd));
    TIERMESH_RETURN_IF_ERROR(add_matrix(prefix + "ffn_up.weight", n_embd, n_ff));
  }
  return writer.Serialize();
}

}  // namespace tiermesh::test_model
