#include "tools/make_test_model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

#include "services/common/status/status.h"

namespace tiermesh::test_model {
namespace {

constexpr absl::string_view kMagic = "GGUF";
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

// Little-endian encoders, written with shifts so that they do not depend on the host's order.
void PutUint(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}
void PutU32(std::string& out, uint32_t value) { PutUint(out, value, 4); }
void PutU64(std::string& out, uint64_t value) { PutUint(out, value, 8); }
void PutF32(std::string& out, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  PutU32(out, bits);
}
void PutString(std::string& out, absl::string_view value) {
  PutU64(out, value.size());
  out.append(value.data(), value.size());
}
void PutType(std::string& out, GgufType type) { PutU32(out, static_cast<uint32_t>(type)); }

uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// Reads a GGUF byte stream front to back; every read is bounds-checked.
class Cursor {
 public:
  explicit Cursor(absl::string_view bytes) : bytes_(bytes) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  absl::StatusOr<uint64_t> Uint(int width, absl::string_view what) {
    if (remaining() < static_cast<size_t>(width)) {
      return Error(absl::StrCat("truncated while reading ", what));
    }
    uint64_t value = 0;
    for (int i = 0; i < width; ++i) {
      value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += width;
    return value;
  }

  absl::StatusOr<std::string> String(absl::string_view what) {
    absl::StatusOr<uint64_t> length = Uint(8, what);
    if (!length.ok()) return length.status();
    if (*length > remaining()) {
      return Error(
          absl::StrCat(what, " claims ", *length, " bytes but only ", remaining(), " remain"));
    }
    std::string value(bytes_.substr(pos_, *length));
    pos_ += *length;
    return value;
  }

  absl::Status Error(absl::string_view message) const {
    return absl::InvalidArgumentError(absl::StrCat("GGUF: ", message, " (at byte ", pos_, ")"));
  }

 private:
  absl::string_view bytes_;
  size_t pos_ = 0;
};

int ScalarWidth(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

bool IsKnownType(uint64_t raw) { return raw <= static_cast<uint32_t>(GgufType::kFloat64); }

int64_t SignExtend(uint64_t value, int width) {
  if (width == 8) return static_cast<int64_t>(value);
  const uint64_t sign_bit = uint64_t{1} << (8 * width - 1);
  return static_cast<int64_t>((value ^ sign_bit) - sign_bit);
}

absl::StatusOr<GgufValue> ReadValue(Cursor& cursor, GgufType type, bool inside_array) {
  GgufValue value;
  value.type = type;
  if (type == GgufType::kString) {
    absl::StatusOr<std::string> s = cursor.String("string value");
    if (!s.ok()) return s.status();
    value.string = *std::move(s);
    return value;
  }
  if (type == GgufType::kArray) {
    if (inside_array) return cursor.Error("nested arrays are not supported");
    absl::StatusOr<uint64_t> raw_type = cursor.Uint(4, "array element type");
    if (!raw_type.ok()) return raw_type.status();
    if (!IsKnownType(*raw_type)) {
      return cursor.Error(absl::StrCat("unknown array element type ", *raw_type));
    }
    value.array_type = static_cast<GgufType>(*raw_type);
    absl::StatusOr<uint64_t> count = cursor.Uint(8, "array length");
    if (!count.ok()) return count.status();
    // Every element takes at least one byte, so a larger count is a lie (and would make the
    // reserve below allocate without bound).
    if (*count > cursor.remaining()) {
      return cursor.Error(absl::StrCat("array claims ", *count, " elements but only ",
                                       cursor.remaining(), " bytes remain"));
    }
    value.array.reserve(*count);
    for (uint64_t i = 0; i < *count; ++i) {
      absl::StatusOr<GgufValue> element = ReadValue(cursor, value.array_type, true);
      if (!element.ok()) return element.status();
      value.array.push_back(*std::move(element));
    }
    return value;
  }
  const int width = ScalarWidth(type);
  absl::StatusOr<uint64_t> raw = cursor.Uint(width, "scalar value");
  if (!raw.ok()) return raw.status();
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kUint16:
    case GgufType::kUint32:
    case GgufType::kUint64:
      value.unsigned_integer = *raw;
      break;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      value.integer = SignExtend(*raw, width);
      break;
    case GgufType::kFloat32: {
      const uint32_t bits = static_cast<uint32_t>(*raw);
      float f;
      std::memcpy(&f, &bits, sizeof(f));
      value.real = f;
      break;
    }
    case GgufType::kFloat64: {
      double d;
      const uint64_t bits = *raw;
      std::memcpy(&d, &bits, sizeof(d));
      value.real = d;
      break;
    }
    case GgufType::kBool:
      if (*raw > 1) return cursor.Error(absl::StrCat("invalid bool value ", *raw));
      value.boolean = *raw == 1;
      break;
    case GgufType::kString:
    case GgufType::kArray:
      break;  // handled above
  }
  return value;
}

}  // namespace

size_t GgmlTypeSize(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
      return 4;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 2;
  }
  return 0;
}

const GgufValue* GgufFile::Find(absl::string_view key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  for (const GgufTensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<GgufFile> ParseGguf(absl::string_view bytes) {
  Cursor cursor(bytes);
  if (bytes.substr(0, kMagic.size()) != kMagic) {
    return cursor.Error("missing \"GGUF\" magic");
  }
  TIERMESH_ASSIGN_OR_RETURN(uint64_t magic, cursor.Uint(4, "magic"));
  (void)magic;
  GgufFile file;
  TIERMESH_ASSIGN_OR_RETURN(uint64_t version, cursor.Uint(4, "version"));
  if (version != kGgufVersion) {
    return cursor.Error(
        absl::StrCat("unsupported version ", version, " (want ", kGgufVersion, ")"));
  }
  file.version = static_cast<uint32_t>(version);
  TIERMESH_ASSIGN_OR_RETURN(uint64_t n_tensors, cursor.Uint(8, "tensor count"));
  TIERMESH_ASSIGN_OR_RETURN(uint64_t n_kv, cursor.Uint(8, "metadata count"));
  // Each entry takes well over one byte; larger counts cannot be honest.
  if (n_kv > cursor.remaining() || n_tensors > cursor.remaining()) {
    return cursor.Error(absl::StrCat("counts (", n_tensors, " tensors, ", n_kv,
                                     " metadata entries) exceed the file size"));
  }

  for (uint64_t i = 0; i < n_kv; ++i) {
    TIERMESH_ASSIGN_OR_RETURN(std::string key, cursor.String("metadata key"));
    if (key.empty()) return cursor.Error("empty metadata key");
    if (file.Find(key) != nullptr) return cursor.Error(absl::StrCat("duplicate key ", key));
    TIERMESH_ASSIGN_OR_RETURN(uint64_t raw_type, cursor.Uint(4, "metadata type"));
    if (!IsKnownType(raw_type)) {
      return cursor.Error(absl::StrCat("unknown metadata type ", raw_type, " for ", key));
    }
    TIERMESH_ASSIGN_OR_RETURN(GgufValue value,
                              ReadValue(cursor, static_cast<GgufType>(raw_type), false));
    file.metadata.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* alignment = file.Find("general.alignment"); alignment != nullptr) {
    if (alignment->type != GgufType::kUint32 || alignment->unsigned_integer == 0 ||
        (alignment->unsigned_integer & (alignment->unsigned_integer - 1)) != 0) {
      return cursor.Error("general.alignment must be a uint32 power of two");
    }
    file.alignment = alignment->unsigned_integer;
  }

  std::vector<uint64_t> relative_offsets;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    TIERMESH_ASSIGN_OR_RETURN(info.name, cursor.String("tensor name"));
    if (info.name.empty()) return cursor.Error("empty tensor name");
    if (file.FindTensor(info.name) != nullptr) {
      return cursor.Error(absl::StrCat("duplicate tensor ", info.name));
    }
    TIERMESH_ASSIGN_OR_RETURN(uint64_t n_dims, cursor.Uint(4, "tensor rank"));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return cursor.Error(absl::StrCat("tensor ", info.name, " has rank ", n_dims));
    }
    uint64_t elements = 1;
    for (uint64_t d = 0; d < n_dims; ++d) {
      TIERMESH_ASSIGN_OR_RETURN(uint64_t dim, cursor.Uint(8, "tensor dimension"));
      // Bounding every dimension by the file size keeps the product below 2^64 for rank <= 4
      // only if we also check the running product, which the next line does.
      if (dim == 0 || dim > bytes.size() || elements > std::numeric_limits<uint64_t>::max() / dim) {
        return cursor.Error(absl::StrCat("tensor ", info.name, " has invalid dimension ", dim));
      }
      elements *= dim;
      info.dims.push_back(static_cast<int64_t>(dim));
    }
    TIERMESH_ASSIGN_OR_RETURN(uint64_t raw_type, cursor.Uint(4, "tensor type"));
    if (raw_type != static_cast<uint32_t>(GgmlType::kF32) &&
        raw_type != static_cast<uint32_t>(GgmlType::kF16) &&
        raw_type != static_cast<uint32_t>(GgmlType::kBF16)) {
      return cursor.Error(absl::StrCat("tensor ", info.name, " has unsupported ggml type ",
                                       raw_type, " (only F32, F16, BF16 are understood)"));
    }
    info.type = static_cast<GgmlType>(raw_type);
    if (elements > bytes.size()) {
      return cursor.Error(absl::StrCat("tensor ", info.name, " is larger than the file"));
    }
    info.size = elements * GgmlTypeSize(info.type);
    TIERMESH_ASSIGN_OR_RETURN(uint64_t offset, cursor.Uint(8, "tensor offset"));
    if (offset % file.alignment != 0) {
      return cursor.Error(absl::StrCat("tensor ", info.name, " offset ", offset,
                                       " is not aligned to ", file.alignment));
    }
    relative_offsets.push_back(offset);
    file.tensors.push_back(std::move(info));
  }

  file.data_offset = AlignUp(cursor.position(), file.alignment);
  if (n_tensors > 0 && file.data_offset > bytes.size()) {
    return cursor.Error("file ends before the tensor data section");
  }
  for (size_t i = 0; i < file.tensors.size(); ++i) {
    GgufTensorInfo& info = file.tensors[i];
    if (relative_offsets[i] > bytes.size() - file.data_offset ||
        info.size > bytes.size() - file.data_offset - relative_offsets[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF: data of tensor ", info.name, " lies outside the file"));
    }
    info.offset = file.data_offset + relative_offsets[i];
  }
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& info : file.tensors) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i - 1]->offset + by_offset[i - 1]->size > by_offset[i]->offset) {
      return absl::InvalidArgumentError(absl::StrCat("GGUF: tensors ", by_offset[i - 1]->name,
                                                     " and ", by_offset[i]->name, " overlap"));
    }
  }
  return file;
}

void GgufWriter::AddEncoded(absl::string_view key, std::string encoded_value) {
  if (!status_.ok()) return;
  if (key.empty() || std::find(keys_.begin(), keys_.end(), key) != keys_.end()) {
    status_ =
        absl::InvalidArgumentError(absl::StrCat("GGUF writer: empty or duplicate key '", key, "'"));
    return;
  }
  if (key == "general.alignment") {
    // Serialize() always aligns to the default; a different declared value would lie.
    status_ = absl::InvalidArgumentError("GGUF writer: general.alignment is fixed at 32");
    return;
  }
  keys_.emplace_back(key);
  PutString(encoded_metadata_, key);
  encoded_metadata_ += encoded_value;
}

void GgufWriter::AddString(absl::string_view key, absl::string_view value) {
  std::string v;
  PutType(v, GgufType::kString);
  PutString(v, value);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddUint32(absl::string_view key, uint32_t value) {
  std::string v;
  PutType(v, GgufType::kUint32);
  PutU32(v, value);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddInt32(absl::string_view key, int32_t value) {
  std::string v;
  PutType(v, GgufType::kInt32);
  PutU32(v, static_cast<uint32_t>(value));
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddUint64(absl::string_view key, uint64_t value) {
  std::string v;
  PutType(v, GgufType::kUint64);
  PutU64(v, value);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddFloat32(absl::string_view key, float value) {
  std::string v;
  PutType(v, GgufType::kFloat32);
  PutF32(v, value);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddBool(absl::string_view key, bool value) {
  std::string v;
  PutType(v, GgufType::kBool);
  v.push_back(value ? 1 : 0);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddStringArray(absl::string_view key, const std::vector<std::string>& values) {
  std::string v;
  PutType(v, GgufType::kArray);
  PutType(v, GgufType::kString);
  PutU64(v, values.size());
  for (const std::string& s : values) PutString(v, s);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddFloat32Array(absl::string_view key, const std::vector<float>& values) {
  std::string v;
  PutType(v, GgufType::kArray);
  PutType(v, GgufType::kFloat32);
  PutU64(v, values.size());
  for (float f : values) PutF32(v, f);
  AddEncoded(key, std::move(v));
}

void GgufWriter::AddInt32Array(absl::string_view key, const std::vector<int32_t>& values) {
  std::string v;
  PutType(v, GgufType::kArray);
  PutType(v, GgufType::kInt32);
  PutU64(v, values.size());
  for (int32_t i : values) PutU32(v, static_cast<uint32_t>(i));
  AddEncoded(key, std::move(v));
}

absl::Status GgufWriter::AddTensor(absl::string_view name, std::vector<int64_t> dims, GgmlType type,
                                   std::string data) {
  if (name.empty()) return absl::InvalidArgumentError("GGUF writer: empty tensor name");
  for (const Tensor& t : tensors_) {
    if (t.name == name) {
      return absl::InvalidArgumentError(absl::StrCat("GGUF writer: duplicate tensor ", name));
    }
  }
  if (dims.empty() || dims.size() > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF writer: tensor ", name, " has rank ", dims.size()));
  }
  uint64_t elements = 1;
  for (int64_t d : dims) {
    if (d <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF writer: tensor ", name, " has dimension ", d));
    }
    elements *= static_cast<uint64_t>(d);
  }
  if (data.size() != elements * GgmlTypeSize(type)) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF writer: tensor ", name, " needs ",
                                                   elements * GgmlTypeSize(type), " bytes, got ",
                                                   data.size()));
  }
  tensors_.push_back(Tensor{std::string(name), std::move(dims), type, std::move(data)});
  return absl::OkStatus();
}

std::string GgufWriter::Serialize() const {
  std::string out(kMagic);
  PutU32(out, kGgufVersion);
  PutU64(out, tensors_.size());
  PutU64(out, keys_.size());
  out += encoded_metadata_;
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(out, t.name);
    PutU32(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) PutU64(out, static_cast<uint64_t>(d));
    PutU32(out, static_cast<uint32_t>(t.type));
    PutU64(out, offset);
    offset = AlignUp(offset + t.data.size(), kGgufDefaultAlignment);
  }
  out.resize(AlignUp(out.size(), kGgufDefaultAlignment), '\0');
  for (const Tensor& t : tensors_) {
    out += t.data;
    out.resize(AlignUp(out.size(), kGgufDefaultAlignment), '\0');
  }
  return out;
}

}  // namespace tiermesh::test_model
