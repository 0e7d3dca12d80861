// The generated test model is a structurally valid llama GGUF: the keys, vocabulary and tensor
// shapes that llama.cpp's loader requires are present and consistent, and the output is
// deterministic. (Whether llama-server really loads it is checked by llama_server_smoke_test.)
#include "tools/make_test_model/test_model.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"
#include "tools/make_test_model/gguf.h"

namespace tiermesh::test_model {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

uint64_t U(const GgufFile& file, const char* key) {
  const GgufValue* v = file.Find(key);
  EXPECT_NE(v, nullptr) << key;
  return v == nullptr ? 0 : v->unsigned_integer;
}

std::vector<int64_t> Dims(const GgufFile& file, const std::string& name) {
  const GgufTensorInfo* t = file.FindTensor(name);
  EXPECT_NE(t, nullptr) << name;
  return t == nullptr ? std::vector<int64_t>{} : t->dims;
}

TEST(TestModelTest, DefaultModelHasWhatLlamaCppNeeds) {
  ASSERT_OK_AND_ASSIGN(std::string bytes, BuildTestModel(TestModelOptions{}));
  ASSERT_OK_AND_ASSIGN(GgufFile file, ParseGguf(bytes));
  EXPECT_EQ(file.Find("general.architecture")->string, "llama");
  EXPECT_EQ(U(file, "llama.context_length"), 4096u);
  EXPECT_EQ(U(file, "llama.embedding_length"), 64u);
  EXPECT_EQ(U(file, "llama.block_count"), 2u);
  EXPECT_EQ(U(file, "llama.feed_forward_length"), 128u);
  EXPECT_EQ(U(file, "llama.attention.head_count"), 4u);
  EXPECT_EQ(U(file, "llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(U(file, "llama.rope.dimension_count"), 16u);
  EXPECT_EQ(U(file, "llama.vocab_size"), static_cast<uint64_t>(kVocabSize));
  EXPECT_GT(file.Find("llama.attention.layer_norm_rms_epsilon")->real, 0.0);

  EXPECT_EQ(file.Find("tokenizer.ggml.model")->string, "llama");
  const GgufValue* tokens = file.Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  ASSERT_EQ(tokens->array.size(), static_cast<size_t>(kVocabSize));
  EXPECT_EQ(file.Find("tokenizer.ggml.scores")->array.size(), static_cast<size_t>(kVocabSize));
  const GgufValue* types = file.Find("tokenizer.ggml.token_type");
  ASSERT_EQ(types->array.size(), static_cast<size_t>(kVocabSize));
  EXPECT_EQ(tokens->array[kUnkToken].string, "<unk>");
  EXPECT_EQ(tokens->array[kBosToken].string, "<s>");
  EXPECT_EQ(tokens->array[kEosToken].string, "</s>");
  EXPECT_EQ(tokens->array[kImStartToken].string, "<|im_start|>");
  EXPECT_EQ(tokens->array[kImEndToken].string, "<|im_end|>");
  EXPECT_EQ(tokens->array[kFirstByteToken].string, "<0x00>");
  EXPECT_EQ(tokens->array[kFirstByteToken + 0x0A].string, "<0x0A>");  // llama.cpp's newline
  EXPECT_EQ(tokens->array[kFirstByteToken + 0xFF].string, "<0xFF>");
  EXPECT_EQ(tokens->array[kSpaceToken].string, "\xe2\x96\x81");
  EXPECT_EQ(tokens->array[kToolCallStartToken].string, "<tool_call>");
  EXPECT_EQ(tokens->array[kToolCallEndToken].string, "</tool_call>");
  EXPECT_EQ(types->array[kToolCallStartToken].integer, 4);  // user-defined
  for (int b = 0; b < 256; ++b) EXPECT_EQ(types->array[kFirstByteToken + b].integer, 6) << b;
  EXPECT_EQ(U(file, "tokenizer.ggml.bos_token_id"), static_cast<uint64_t>(kBosToken));
  EXPECT_EQ(U(file, "tokenizer.ggml.eos_token_id"), static_cast<uint64_t>(kEosToken));
  EXPECT_FALSE(file.Find("tokenizer.ggml.add_space_prefix")->boolean);
  EXPECT_EQ(file.Find("tokenizer.chat_template")->string, TestModelChatTemplate());
  EXPECT_THAT(TestModelChatTemplate(), HasSubstr("<tool_call>"));

  const int64_t v = kVocabSize;
  EXPECT_EQ(Dims(file, "token_embd.weight"), std::vector<int64_t>({64, v}));
  EXPECT_EQ(Dims(file, "output.weight"), std::vector<int64_t>({64, v}));
  EXPECT_EQ(Dims(file, "output_norm.weight"), std::vector<int64_t>({64}));
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = absl::StrCat("blk.", layer, ".");
    EXPECT_EQ(Dims(file, p + "attn_norm.weight"), std::vector<int64_t>({64}));
    EXPECT_EQ(Dims(file, p + "attn_q.weight"), std::vector<int64_t>({64, 64}));
    EXPECT_EQ(Dims(file, p + "attn_k.weight"), std::vector<int64_t>({64, 64}));
    EXPECT_EQ(Dims(file, p + "attn_v.weight"), std::vector<int64_t>({64, 64}));
    EXPECT_EQ(Dims(file, p + "attn_output.weight"), std::vector<int64_t>({64, 64}));
    EXPECT_EQ(Dims(file, p + "ffn_norm.weight"), std::vector<int64_t>({64}));
    EXPECT_EQ(Dims(file, p + "ffn_gate.weight"), std::vector<int64_t>({64, 128}));
    EXPECT_EQ(Dims(file, p + "ffn_down.weight"), std::vector<int64_t>({128, 64}));
    EXPECT_EQ(Dims(file, p + "ffn_up.weight"), std::vector<int64_t>({64, 128}));
  }
  EXPECT_EQ(file.tensors.size(), 3u + 2 * 9);
  // "A few hundred KB".
  EXPECT_GT(bytes.size(), 100u * 1024);
  EXPECT_LT(bytes.size(), 1024u * 1024);
}

TEST(TestModelTest, SpecialTokensHaveZeroOutputRowsSoTheyAreNeverPredicted) {
  ASSERT_OK_AND_ASSIGN(std::string bytes, BuildTestModel(TestModelOptions{}));
  ASSERT_OK_AND_ASSIGN(GgufFile file, ParseGguf(bytes));
  const GgufTensorInfo* output = file.FindTensor("output.weight");
  ASSERT_NE(output, nullptr);
  auto row_is_zero = [&](int token) {
    for (int i = 0; i < 64; ++i) {
      float f;
      std::memcpy(&f, bytes.data() + output->offset + (token * 64 + i) * 4, 4);
      if (f != 0.0f) return false;
    }
    return true;
  };
  for (int t = kUnkToken; t <= kImEndToken; ++t) EXPECT_TRUE(row_is_zero(t)) << t;
  EXPECT_TRUE(row_is_zero(kToolCallStartToken));
  EXPECT_TRUE(row_is_zero(kToolCallEndToken));
  EXPECT_FALSE(row_is_zero(kFirstByteToken));
  EXPECT_FALSE(row_is_zero(kSpaceToken));
}

TEST(TestModelTest, IsDeterministicPerSeed) {
  TestModelOptions a;
  a.seed = 42;
  ASSERT_OK_AND_ASSIGN(std::string first, BuildTestModel(a));
  ASSERT_OK_AND_ASSIGN(std::string second, BuildTestModel(a));
  EXPECT_EQ(first, second);
  TestModelOptions b = a;
  b.seed = 43;
  ASSERT_OK_AND_ASSIGN(std::string other, BuildTestModel(b));
  EXPECT_EQ(first.size(), other.size());
  EXPECT_NE(first, other);
}

TEST(TestModelTest, F16ModelIsAboutHalfTheSize) {
  TestModelOptions options;
  options.weight_type = WeightType::kF16;
  ASSERT_OK_AND_ASSIGN(std::string f16, BuildTestModel(options));
  ASSERT_OK_AND_ASSIGN(std::string f32, BuildTestModel(TestModelOptions{}));
  ASSERT_OK_AND_ASSIGN(GgufFile file, ParseGguf(f16));
  EXPECT_EQ(file.FindTensor("blk.0.attn_q.weight")->type, GgmlType::kF16);
  EXPECT_EQ(file.FindTensor("blk.0.attn_norm.weight")->type, GgmlType::kF32);
  EXPECT_EQ(U(file, "general.file_type"), 1u);
  EXPECT_LT(f16.size(), f32.size() * 6 / 10);
}

TEST(TestModelTest, CustomShapesAndGroupedQueryAttention) {
  TestModelOptions options;
  options.n_layer = 3;
  options.n_embd = 32;
  options.n_head = 4;
  options.n_head_kv = 2;
  options.n_ff = 48;
  options.n_ctx_train = 1024;
  ASSERT_OK_AND_ASSIGN(std::string bytes, BuildTestModel(options));
  ASSERT_OK_AND_ASSIGN(GgufFile file, ParseGguf(bytes));
  EXPECT_EQ(Dims(file, "blk.2.attn_k.weight"), std::vector<int64_t>({32, 16}));
  EXPECT_EQ(Dims(file, "blk.2.attn_q.weight"), std::vector<int64_t>({32, 32}));
  EXPECT_EQ(Dims(file, "blk.2.ffn_down.weight"), std::vector<int64_t>({48, 32}));
  EXPECT_EQ(U(file, "llama.rope.dimension_count"), 8u);
  EXPECT_EQ(file.FindTensor("blk.3.attn_q.weight"), nullptr);
}

TEST(TestModelTest, RejectsOptionsThatCannotMakeALoadableModel) {
  struct Case {
    const char* name;
    void (*mutate)(TestModelOptions&);
    const char* message;
  };
  const std::vector<Case> cases = {
      {"no layers", [](TestModelOptions& o) { o.n_layer = 0; }, "layers is 0"},
      {"too many layers", [](TestModelOptions& o) { o.n_layer = 65; }, "layers is 65"},
      {"tiny embd", [](TestModelOptions& o) { o.n_embd = 4; }, "embd is 4"},
      {"zero heads", [](TestModelOptions& o) { o.n_head = 0; }, "heads is 0"},
      {"kv > heads", [](TestModelOptions& o) { o.n_head_kv = 8; }, "kv_heads is 8"},
      {"zero ff", [](TestModelOptions& o) { o.n_ff = 0; }, "ff is 0"},
      {"tiny ctx", [](TestModelOptions& o) { o.n_ctx_train = 8; }, "ctx is 8"},
      {"embd % heads", [](TestModelOptions& o) { o.n_embd = 66; }, "multiple of heads"},
      {"odd head size",
       [](TestModelOptions& o) {
         o.n_embd = 60;
         o.n_head = 4;
       },
       "must be even"},
      {"heads % kv",
       [](TestModelOptions& o) {
         o.n_head = 4;
         o.n_head_kv = 3;
       },
       "multiple of kv_heads"},
  };
  for (const Case& c : cases) {
    TestModelOptions options;
    c.mutate(options);
    EXPECT_THAT(BuildTestModel(options),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
  }
}

TEST(TestModelTest, FloatToHalf) {
  struct Case {
    float value;
    uint16_t half;
  };
  const std::vector<Case> cases = {
      {0.0f, 0x0000},           {-0.0f, 0x8000}, {1.0f, 0x3c00},
      {-2.0f, 0xc000},          {0.5f, 0x3800},  {65504.0f, 0x7bff},
      {65520.0f, 0x7c00},       {1e10f, 0x7c00}, {5.9604645e-08f, 0x0001},  // smallest subnormal
      {2.9802322e-08f, 0x0000},  // exactly half the smallest subnormal: ties to even (zero)
      {6.1035156e-05f, 0x0400},  // smallest normal
      {1.0009765625f, 0x3c01},   // 1 + 2^-10
      {1.00048828125f, 0x3c00},  // 1 + 2^-11: a tie, rounds to even
      {1.00146484375f, 0x3c02},  // 1 + 3*2^-11: a tie, rounds up to even
      {0.333333333f, 0x3555},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(FloatToHalf(c.value), c.half) << c.value;
  }
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::quiet_NaN()) & 0x7c00, 0x7c00);
  EXPECT_NE(FloatToHalf(std::numeric_limits<float>::quiet_NaN()) & 0x03ff, 0);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(TestModelTest, CommandLineToolWritesTheSameModel) {
  const std::string dir = ::testing::TempDir();
  const std::string path = absl::StrCat(dir, "/cli_model.gguf");
  std::remove(path.c_str());
  const std::string command = absl::StrCat(TIERMESH_MAKE_TEST_MODEL_BIN, " --output ", path,
                                           " --seed 9 --layers 3 --type f16 > /dev/null");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  TestModelOptions options;
  options.seed = 9;
  options.n_layer = 3;
  options.weight_type = WeightType::kF16;
  ASSERT_OK_AND_ASSIGN(std::string expected, BuildTestModel(options));
  EXPECT_EQ(ReadFile(path), expected);
  std::remove(path.c_str());
}

TEST(TestModelTest, CommandLineToolRejectsBadFlags) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/never_written.gguf");
  const std::vector<std::string> bad = {
      "",                                             // --output missing
      absl::StrCat("--output ", path, " --type q4"),  // unknown type
      absl::StrCat("--output ", path, " --embd 66"),  // not a multiple of heads
      absl::StrCat("--output ", path, " stray"),      // positional argument
  };
  for (const std::string& args : bad) {
    const std::string command =
        absl::StrCat(TIERMESH_MAKE_TEST_MODEL_BIN, " ", args, " > /dev/null 2>&1");
    EXPECT_NE(std::system(command.c_str()), 0) << args;
  }
  std::ifstream in(path);
  EXPECT_FALSE(in.good());
}

}  // namespace
}  // namespace tiermesh::test_model
