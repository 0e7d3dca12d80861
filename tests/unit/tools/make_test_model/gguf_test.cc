// Round trips through GgufWriter/ParseGguf and the reader's rejection of malformed files.
#include "tools/make_test_model/gguf.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "services/common/status/status_matchers.h"

namespace tiermesh::test_model {
namespace {

using ::testing::HasSubstr;
using ::tiermesh::testing::StatusIs;

std::string F32Bytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());  // the test host is little-endian
  return out;
}

std::string SmallFile() {
  GgufWriter writer;
  writer.AddString("general.architecture", "llama");
  writer.AddUint32("u32", 7);
  writer.AddInt32("i32", -5);
  writer.AddUint64("u64", 1ULL << 40);
  writer.AddFloat32("f32", 0.5f);
  writer.AddBool("flag", true);
  writer.AddStringArray("strings", {"a", "", "ccc"});
  writer.AddFloat32Array("floats", {1.0f, -2.0f});
  writer.AddInt32Array("ints", {3, -4});
  EXPECT_TRUE(writer.AddTensor("a", {3}, GgmlType::kF32, F32Bytes({1, 2, 3})).ok());
  EXPECT_TRUE(writer.AddTensor("b", {2, 2}, GgmlType::kF16, std::string(8, '\x01')).ok());
  EXPECT_TRUE(writer.status().ok());
  return writer.Serialize();
}

TEST(GgufTest, RoundTripsMetadataAndTensors) {
  const std::string bytes = SmallFile();
  ASSERT_OK_AND_ASSIGN(GgufFile file, ParseGguf(bytes));
  EXPECT_EQ(file.version, 3u);
  ASSERT_EQ(file.metadata.size(), 9u);
  EXPECT_EQ(file.metadata[0].first, "general.architecture");
  EXPECT_EQ(file.Find("general.architecture")->string, "llama");
  EXPECT_EQ(file.Find("u32")->unsigned_integer, 7u);
  EXPECT_EQ(file.Find("i32")->integer, -5);
  EXPECT_EQ(file.Find("u64")->unsigned_integer, 1ULL << 40);
  EXPECT_EQ(file.Find("f32")->real, 0.5);
  EXPECT_TRUE(file.Find("flag")->boolean);
  const GgufValue* strings = file.Find("strings");
  ASSERT_NE(strings, nullptr);
  EXPECT_EQ(strings->type, GgufType::kArray);
  EXPECT_EQ(strings->array_type, GgufType::kString);
  ASSERT_EQ(strings->array.size(), 3u);
  EXPECT_EQ(strings->array[2].string, "ccc");
  EXPECT_EQ(file.Find("floats")->array[1].real, -2.0);
  EXPECT_EQ(file.Find("ints")->array[1].integer, -4);
  EXPECT_EQ(file.Find("missing"), nullptr);

  ASSERT_EQ(file.tensors.size(), 2u);
  const GgufTensorInfo* a = file.FindTensor("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dims, std::vector<int64_t>({3}));
  EXPECT_EQ(a->size, 12u);
  EXPECT_EQ(a->offset % 32, 0u);
  EXPECT_EQ(a->offset, file.data_offset);
  float second;
  std::memcpy(&second, bytes.data() + a->offset + 4, 4);
  EXPECT_EQ(second, 2.0f);
  const GgufTensorInfo* b = file.FindTensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, GgmlType::kF16);
  EXPECT_EQ(b->offset, file.data_offset + 32);
  EXPECT_EQ(bytes.size() % 32, 0u);
}

TEST(GgufTest, WriterRejectsBadInput) {
  GgufWriter writer;
  EXPECT_THAT(writer.AddTensor("t", {2}, GgmlType::kF32, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 8 bytes")));
  EXPECT_THAT(writer.AddTensor("t", {0}, GgmlType::kF32, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dimension 0")));
  EXPECT_THAT(writer.AddTensor("t", {1, 1, 1, 1, 1}, GgmlType::kF32, std::string(4, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rank 5")));
  ASSERT_TRUE(writer.AddTensor("t", {1}, GgmlType::kF32, std::string(4, '\0')).ok());
  EXPECT_THAT(writer.AddTensor("t", {1}, GgmlType::kF32, std::string(4, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate tensor")));

  writer.AddUint32("k", 1);
  EXPECT_TRUE(writer.status().ok());
  writer.AddUint32("k", 2);
  EXPECT_THAT(writer.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate key 'k'")));

  GgufWriter aligned;
  aligned.AddUint32("general.alignment", 64);
  EXPECT_THAT(aligned.status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("general.alignment")));
}

TEST(GgufTest, EveryTruncationIsAnErrorNotACrash) {
  const std::string bytes = SmallFile();
  ASSERT_TRUE(ParseGguf(bytes).ok());
  // Cutting anywhere before the end of the last tensor's data must fail cleanly.
  ASSERT_OK_AND_ASSIGN(GgufFile file, ParseGguf(bytes));
  const size_t needed = file.FindTensor("b")->offset + file.FindTensor("b")->size;
  for (size_t cut = 0; cut < needed; ++cut) {
    EXPECT_THAT(ParseGguf(absl::string_view(bytes).substr(0, cut)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("GGUF")))
        << "cut at " << cut;
  }
}

// Patches the little-endian integer of `width` bytes at `offset`.
std::string Patch(std::string bytes, size_t offset, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) bytes[offset + i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

TEST(GgufTest, RejectsMalformedHeaders) {
  const std::string good = SmallFile();
  struct Case {
    const char* name;
    std::string bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"bad magic", "GGUX" + good.substr(4), "magic"},
      {"version 2", Patch(good, 4, 2, 4), "unsupported version 2"},
      {"huge tensor count", Patch(good, 8, 1ULL << 60, 8), "exceed the file size"},
      {"huge kv count", Patch(good, 16, 1ULL << 60, 8), "exceed the file size"},
      // The first key's length field sits at byte 24.
      {"huge key length", Patch(good, 24, 1ULL << 62, 8), "claims"},
      // Its type tag follows the 20-byte key "general.architecture".
      {"unknown type", Patch(good, 24 + 8 + 20, 99, 4), "unknown metadata type 99"},
      {"empty", "", "magic"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ParseGguf(c.bytes),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
  }
}

TEST(GgufTest, RejectsTensorDataOutsideTheFileOrMisaligned) {
  GgufWriter writer;
  ASSERT_TRUE(writer.AddTensor("only", {4}, GgmlType::kF32, std::string(16, '\0')).ok());
  const std::string good = writer.Serialize();
  // Layout: 24-byte header, name (8 + 4), rank (4), dim (8), type (4), offset (8).
  const size_t offset_field = 24 + 8 + 4 + 4 + 8 + 4;
  ASSERT_TRUE(ParseGguf(good).ok());
  EXPECT_THAT(ParseGguf(Patch(good, offset_field, 3, 8)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not aligned")));
  EXPECT_THAT(ParseGguf(Patch(good, offset_field, 1 << 20, 8)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the file")));
  EXPECT_THAT(ParseGguf(Patch(good, 24 + 8 + 4 + 4 + 8, 2, 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported ggml type 2")));
  EXPECT_THAT(ParseGguf(Patch(good, 24 + 8 + 4, 5, 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rank 5")));
}

}  // namespace
}  // namespace tiermesh::test_model
