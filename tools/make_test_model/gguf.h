// A minimal GGUF v3 writer and reader: enough to write the project's tiny test model and to
// read any such file back for structural checks. Not a general ggml tensor library: tensor
// payloads are raw little-endian bytes and only F32, F16 and BF16 tensors are understood.
//
//   GgufWriter writer;
//   writer.AddString("general.architecture", "llama");
//   writer.AddUint32("llama.block_count", 2);
//   TIERMESH_RETURN_IF_ERROR(writer.AddTensor("output_norm.weight", {64}, GgmlType::kF32, bytes));
//   std::string file = writer.Serialize();
//   TIERMESH_ASSIGN_OR_RETURN(GgufFile parsed, ParseGguf(file));
//   const GgufValue* arch = parsed.Find("general.architecture");
//
// Format reference: ggml's gguf.h (magic "GGUF", version 3, little-endian, 64-bit counts,
// tensor data aligned to general.alignment, default 32).
#ifndef TIERMESH_TOOLS_MAKE_TEST_MODEL_GGUF_H_
#define TIERMESH_TOOLS_MAKE_TEST_MODEL_GGUF_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tiermesh::test_model {

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint64_t kGgufDefaultAlignment = 32;

// Value types of GGUF metadata (numbering fixed by the format).
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// Tensor element types this code can size (numbering fixed by ggml's enum ggml_type).
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 30,
};

// Bytes per element of `type`.
[[nodiscard]] size_t GgmlTypeSize(GgmlType type);

// One metadata value. Exactly the member that matches `type` is meaningful: integers of every
// width are widened into `integer` (signed) or `unsigned_integer`, floats into `real`; arrays keep
// their element type in `array_type` and their elements in `array`.
struct GgufValue {
  GgufType type = GgufType::kUint8;
  int64_t integer = 0;
  uint64_t unsigned_integer = 0;
  double real = 0;
  bool boolean = false;
  std::string string;
  GgufType array_type = GgufType::kUint8;
  std::vector<GgufValue> array;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ne0 first (the fastest-varying dimension), as ggml orders them
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // absolute offset of the data in the file
  uint64_t size = 0;    // bytes
};

struct GgufFile {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                      // in file order
  uint64_t data_offset = 0;                                 // where the tensor data section starts

  // The value stored under `key`, or nullptr.
  const GgufValue* Find(absl::string_view key) const;
  // The tensor called `name`, or nullptr.
  const GgufTensorInfo* FindTensor(absl::string_view name) const;
};

// Parses and validates a whole GGUF file held in memory: every length is checked against the
// bytes that remain, tensor data must lie inside the file, be aligned and not overlap. Any
// violation is INVALID_ARGUMENT with the offset where it was found; nothing is trusted.
[[nodiscard]] absl::StatusOr<GgufFile> ParseGguf(absl::string_view bytes);

// Builds a GGUF v3 file in memory. Keys and tensor names must be unique.
class GgufWriter {
 public:
  void AddString(absl::string_view key, absl::string_view value);
  void AddUint32(absl::string_view key, uint32_t value);
  void AddInt32(absl::string_view key, int32_t value);
  void AddUint64(absl::string_view key, uint64_t value);
  void AddFloat32(absl::string_view key, float value);
  void AddBool(absl::string_view key, bool value);
  void AddStringArray(absl::string_view key, const std::vector<std::string>& values);
  void AddFloat32Array(absl::string_view key, const std::vector<float>& values);
  void AddInt32Array(absl::string_view key, const std::vector<int32_t>& values);

  // `data` holds the tensor's elements, little-endian, ne0 fastest; its size must match `dims`.
  [[nodiscard]] absl::Status AddTensor(absl::string_view name, std::vector<int64_t> dims,
                                       GgmlType type, std::string data);

  // The first error met by an Add* call (a duplicate key), or OK.
  [[nodiscard]] absl::Status status() const { return status_; }

  // The complete file. Call only when status() is OK.
  [[nodiscard]] std::string Serialize() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> dims;
    GgmlType type;
    std::string data;
  };
  // Appends one encoded key/value; `encoded_value` starts with the type tag.
  void AddEncoded(absl::string_view key, std::string encoded_value);

  absl::Status status_;
  std::vector<std::string> keys_;
  std::string encoded_metadata_;
  std::vector<Tensor> tensors_;
};

}  // namespace tiermesh::test_model

#endif  // TIERMESH_TOOLS_MAKE_TEST_MODEL_GGUF_H_
