#include "services/classifier/model.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "services/classifier/sha256.h"

namespace tiermesh::classifier {
namespace {

using nlohmann::json;

constexpr size_t kFixedHeaderBytes = 24;
constexpr size_t kChecksumBytes = 32;
constexpr uint32_t kMaxHeaderBytes = 16u << 20;

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint32_t GetU32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(b[at + i])} << (8 * i);
  return v;
}
uint64_t GetU64(std::string_view b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<uint8_t>(b[at + i])} << (8 * i);
  return v;
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE 754 binary16 <-> binary32, round to nearest even; finite inputs
// beyond the half range saturate to +-65504 (weights never get near it).
uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const float a = std::fabs(f);
  if (!(a < 65520.0f))
    return static_cast<uint16_t>(sign | 0x7BFF);  // saturate (NaN excluded earlier)
  if (a < 6.103515625e-05f) {                     // subnormal half: multiples of 2^-24
    const float scaled = a * 16777216.0f;
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  uint32_t mantissa = x & 0x7FFFFF;
  int32_t exponent = static_cast<int32_t>((x >> 23) & 0xFF) - 127 + 15;
  // Round the 23-bit mantissa to 10 bits, ties to even.
  const uint32_t round_bits = mantissa & 0x1FFF;
  mantissa >>= 13;
  if (round_bits > 0x1000 || (round_bits == 0x1000 && (mantissa & 1))) {
    ++mantissa;
    if (mantissa == 0x400) {
      mantissa = 0;
      ++exponent;
    }
  }
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7BFF);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) | mantissa);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exponent = (h >> 10) & 0x1F;
  const uint32_t mantissa = h & 0x3FF;
  if (exponent == 0) {
    const float v = static_cast<float>(mantissa) / 16777216.0f;
    return sign ? -v : v;
  }
  if (exponent == 31) return BitsFloat(sign | 0x7F800000 | (mantissa << 13));  // inf/NaN
  return BitsFloat(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

std::string_view EncodingName(WeightEncoding e) {
  return e == WeightEncoding::kF16 ? "f16" : "f32";
}
size_t EncodingBytes(WeightEncoding e) { return e == WeightEncoding::kF16 ? 2 : 4; }

std::string HexSeed(uint64_t seed) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(seed));
  return buf;
}

json HeaderJson(const ModelParams& p) {
  const FeatureConfig& f = p.features;
  json sources = json::array();
  for (const SourceProvenance& s : p.info.sources) {
    sources.push_back(
        {{"name", s.name}, {"license", s.license}, {"role", s.role}, {"rows", s.rows}});
  }
  json tasks = json::array();
  for (TaskType t : kTaskOrder) tasks.push_back(std::string(TaskName(t)));
  json columns = tasks;
  columns.push_back("complexity");
  json header = {
      {"format", "tiermesh-classifier"},
      {"feature_version", kFeatureVersion},
      {"name", p.info.name},
      {"created_by", p.info.created_by},
      {"tasks", tasks},
      {"features",
       {{"hash_bits", f.hash_bits},
        {"seed", HexSeed(f.seed)},
        {"char_ngram_min", f.char_ngram_min},
        {"char_ngram_max", f.char_ngram_max},
        {"word_bigrams", f.word_bigrams},
        {"context_weight", f.context_weight},
        {"head_bytes", f.head_bytes},
        {"tail_bytes", f.tail_bytes},
        {"structural", StructuralNames()}}},
      {"weights",
       {{"encoding", std::string(EncodingName(p.encoding))},
        {"rows", f.num_features()},
        {"columns", columns}}},
      {"complexity_calibration", {{"method", "platt"}, {"a", p.platt_a}, {"b", p.platt_b}}},
      {"provenance",
       {{"data_sha256", p.info.data_sha256},
        {"sources", sources},
        {"attribution", p.info.attribution}}},
  };
  if (!p.info.report_json.empty()) {
    header["report"] = json::parse(p.info.report_json);  // validated by the caller
  }
  return header;
}

absl::Status HeaderError(const std::string& what) {
  return absl::DataLossError(absl::StrCat("model header: ", what));
}

// Fills `p` from the header; checks it against this build.
absl::Status ParseHeader(std::string_view text, ModelParams* p) {
  json h;
  try {
    h = json::parse(text);
  } catch (const json::exception& e) {
    return HeaderError(absl::StrCat("not valid JSON: ", e.what()));
  }
  try {
    if (!h.is_object()) return HeaderError("not a JSON object");
    if (h.value("format", "") != "tiermesh-classifier") {
      return HeaderError("\"format\" is not \"tiermesh-classifier\"");
    }
    const uint32_t feature_version = h.at("feature_version").get<uint32_t>();
    if (feature_version != kFeatureVersion) {
      return absl::FailedPreconditionError(
          absl::StrCat("model was trained with feature version ", feature_version,
                       " but this build extracts feature version ", kFeatureVersion,
                       "; retrain the model with this build"));
    }
    json tasks = json::array();
    for (TaskType t : kTaskOrder) tasks.push_back(std::string(TaskName(t)));
    if (h.at("tasks") != tasks) return HeaderError("task list differs from this build's");
    const json& f = h.at("features");
    FeatureConfig& c = p->features;
    c.hash_bits = f.at("hash_bits").get<uint32_t>();
    const std::string seed = f.at("seed").get<std::string>();
    char* end = nullptr;
    errno = 0;
    c.seed = std::strtoull(seed.c_str(), &end, 16);
    if (seed.size() < 3 || errno != 0 || end == nullptr || *end != '\0') {
      return HeaderError(absl::StrCat("bad seed \"", seed, "\""));
    }
    c.char_ngram_min = f.at("char_ngram_min").get<uint32_t>();
    c.char_ngram_max = f.at("char_ngram_max").get<uint32_t>();
    c.word_bigrams = f.at("word_bigrams").get<bool>();
    c.context_weight = f.at("context_weight").get<float>();
    c.head_bytes = f.at("head_bytes").get<uint32_t>();
    c.tail_bytes = f.at("tail_bytes").get<uint32_t>();
    if (f.at("structural").get<std::vector<std::string>>() != StructuralNames()) {
      return absl::FailedPreconditionError(
          "model's structural feature list differs from this build's; retrain the model");
    }
    if (absl::Status s = c.Validate(); !s.ok()) return HeaderError(std::string(s.message()));
    const json& w = h.at("weights");
    const std::string encoding = w.at("encoding").get<std::string>();
    if (encoding == "f32") {
      p->encoding = WeightEncoding::kF32;
    } else if (encoding == "f16") {
      p->encoding = WeightEncoding::kF16;
    } else {
      return HeaderError(absl::StrCat("unknown weight encoding \"", encoding, "\""));
    }
    if (w.at("rows").get<uint64_t>() != c.num_features()) {
      return HeaderError("weights.rows does not match the feature configuration");
    }
    const json& cal = h.at("complexity_calibration");
    if (cal.at("method") != "platt") return HeaderError("unknown calibration method");
    p->platt_a = cal.at("a").get<float>();
    p->platt_b = cal.at("b").get<float>();
    p->info.name = h.value("name", "");
    p->info.created_by = h.value("created_by", "");
    const json& prov = h.at("provenance");
    p->info.data_sha256 = prov.at("data_sha256").get<std::string>();
    p->info.attribution = prov.value("attribution", "");
    for (const json& s : prov.at("sources")) {
      p->info.sources.push_back({s.at("name").get<std::string>(),
                                 s.at("license").get<std::string>(), s.value("role", ""),
                                 s.at("rows").get<int64_t>()});
    }
    if (h.contains("report")) p->info.report_json = h.at("report").dump();
  } catch (const json::exception& e) {
    return HeaderError(e.what());
  }
  return absl::OkStatus();
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

void RoundWeightsToEncoding(ModelParams* params) {
  if (params->encoding != WeightEncoding::kF16) return;
  for (float& w : params->weights) w = HalfToFloat(FloatToHalf(w));
}

Model::Model(ModelParams params, std::string version)
    : params_(std::move(params)), extractor_(params_.features), version_(std::move(version)) {
  // Rows padded to 8 floats: one aligned 32-byte load per feature when scoring.
  const size_t rows = params_.features.num_features();
  rows_.assign(rows * ScoredRequest::kColumns, 0.0f);
  for (size_t r = 0; r < rows; ++r) {
    float mean = 0;
    for (int c = 0; c < kWeightStride; ++c) {
      rows_[r * ScoredRequest::kColumns + c] = params_.weights[r * kWeightStride + c];
      if (c < kNumTasks) mean += params_.weights[r * kWeightStride + c];
    }
    // Column 6 caches the mean task weight, which reasons need per feature.
    rows_[r * ScoredRequest::kColumns + kMeanTaskColumn] = mean / kNumTasks;
  }
}

absl::StatusOr<std::shared_ptr<const Model>> Model::Create(ModelParams params,
                                                           std::string version) {
  if (absl::Status s = params.features.Validate(); !s.ok()) return s;
  const size_t want = size_t{params.features.num_features()} * kWeightStride;
  if (params.weights.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("model has ", params.weights.size(),
                                                   " weights, its feature config needs ", want));
  }
  for (size_t i = 0; i < params.weights.size(); ++i) {
    if (!std::isfinite(params.weights[i])) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", i, " is not finite"));
    }
  }
  if (!std::isfinite(params.platt_a) || !std::isfinite(params.platt_b)) {
    return absl::InvalidArgumentError("calibration parameters are not finite");
  }
  return std::shared_ptr<const Model>(new Model(std::move(params), std::move(version)));
}

Model::Scores Model::Score(const FeatureVector& fv) const {
  Scores s;
  float acc[ScoredRequest::kColumns] = {};
  for (const Feature& f : fv.features) {
    const float* row = rows_.data() + size_t{f.index} * ScoredRequest::kColumns;
    for (int c = 0; c < ScoredRequest::kColumns; ++c) acc[c] += row[c] * f.value;
  }
  for (int c = 0; c < kNumTasks; ++c) s.logits[c] = acc[c];
  s.complexity_logit = acc[kComplexityColumn];
  return s;
}

Model::Scores Model::ScoreRequest(const ClassifyInput& input, ScoredRequest* scratch) const {
  extractor_.Score(input, rows_.data(), scratch);
  Scores s;
  for (int c = 0; c < kNumTasks; ++c) s.logits[c] = scratch->totals[c];
  s.complexity_logit = scratch->totals[kComplexityColumn];
  return s;
}

float Model::Calibrate(float complexity_logit) const {
  const double z = double{params_.platt_a} * complexity_logit + params_.platt_b;
  return static_cast<float>(1.0 / (1.0 + std::exp(-z)));
}

absl::StatusOr<std::string> SerializeModel(const ModelParams& params) {
  if (absl::Status s = params.features.Validate(); !s.ok()) return s;
  const size_t count = size_t{params.features.num_features()} * kWeightStride;
  if (params.weights.size() != count) {
    return absl::InvalidArgumentError(
        absl::StrCat("model has ", params.weights.size(), " weights, expected ", count));
  }
  for (float w : params.weights) {
    if (!std::isfinite(w)) return absl::InvalidArgumentError("a weight is not finite");
  }
  std::string header;
  try {
    header = HeaderJson(params).dump();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("model header: ", e.what()));
  }
  std::string out(kModelMagic, sizeof(kModelMagic));
  PutU32(&out, kModelFormatVersion);
  PutU32(&out, static_cast<uint32_t>(header.size()));
  PutU64(&out, count);
  out.append(header);
  out.reserve(out.size() + count * EncodingBytes(params.encoding) + kChecksumBytes);
  for (const float w : params.weights) {
    if (params.encoding == WeightEncoding::kF16) {
      const uint16_t h = FloatToHalf(w);
      out.push_back(static_cast<char>(h & 0xFF));
      out.push_back(static_cast<char>(h >> 8));
    } else {
      PutU32(&out, FloatBits(w));
    }
  }
  Sha256 sha;
  sha.Update(out);
  const Sha256::Digest digest = sha.Finish();
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

absl::StatusOr<ModelParams> ParseModel(std::string_view bytes, std::string* sha256_hex) {
  if (bytes.size() < kFixedHeaderBytes + kChecksumBytes) {
    return absl::DataLossError(absl::StrCat("model file is truncated: ", bytes.size(),
                                            " bytes, a model file has at least ",
                                            kFixedHeaderBytes + kChecksumBytes));
  }
  if (std::memcmp(bytes.data(), kModelMagic, sizeof(kModelMagic)) != 0) {
    return absl::DataLossError("not a tiermesh classifier model file (bad magic bytes)");
  }
  const uint32_t version = GetU32(bytes, 8);
  if (version != kModelFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat("model file format version ", version,
                                                      " is not supported (this build reads ",
                                                      kModelFormatVersion, ")"));
  }
  const uint32_t header_bytes = GetU32(bytes, 12);
  const uint64_t count = GetU64(bytes, 16);
  if (header_bytes > kMaxHeaderBytes || count > (uint64_t{1} << 32)) {
    return absl::DataLossError("model file has implausible section sizes (corrupted)");
  }
  // Check the length for both encodings before trusting the header.
  const uint64_t base = kFixedHeaderBytes + uint64_t{header_bytes} + kChecksumBytes;
  const bool f32_size = bytes.size() == base + count * 4;
  const bool f16_size = bytes.size() == base + count * 2;
  if (!f32_size && !f16_size) {
    return absl::DataLossError(absl::StrCat(
        "model file is truncated or has trailing bytes: its sections need ", base + count * 4,
        " (f32) or ", base + count * 2, " (f16) bytes, the file has ", bytes.size()));
  }
  const std::string_view body = bytes.substr(0, bytes.size() - kChecksumBytes);
  Sha256 sha;
  sha.Update(body);
  const Sha256::Digest digest = sha.Finish();
  if (std::memcmp(digest.data(), bytes.data() + body.size(), kChecksumBytes) != 0) {
    Sha256::Digest stored;
    std::memcpy(stored.data(), bytes.data() + body.size(), kChecksumBytes);
    return absl::DataLossError(absl::StrCat(
        "model file checksum mismatch: it is corrupted or was modified (stored sha256 ",
        Sha256::Hex(stored).substr(0, 16), "..., computed ", Sha256::Hex(digest).substr(0, 16),
        "...)"));
  }
  ModelParams params;
  if (absl::Status s = ParseHeader(bytes.substr(kFixedHeaderBytes, header_bytes), &params);
      !s.ok()) {
    return s;
  }
  const uint64_t want = uint64_t{params.features.num_features()} * kWeightStride;
  if (count != want) {
    return absl::DataLossError(
        absl::StrCat("model file holds ", count, " weights but its feature config needs ", want));
  }
  if ((params.encoding == WeightEncoding::kF16) != f16_size) {
    return absl::DataLossError("model file length does not match its weight encoding");
  }
  params.weights.resize(count);
  const size_t at = kFixedHeaderBytes + header_bytes;
  for (size_t i = 0; i < count; ++i) {
    float w;
    if (params.encoding == WeightEncoding::kF16) {
      const uint16_t h = static_cast<uint16_t>(static_cast<uint8_t>(bytes[at + 2 * i]) |
                                               (static_cast<uint8_t>(bytes[at + 2 * i + 1]) << 8));
      w = HalfToFloat(h);
    } else {
      w = BitsFloat(GetU32(bytes, at + 4 * i));
    }
    if (!std::isfinite(w)) {
      return absl::DataLossError(absl::StrCat("model weight ", i, " is not finite"));
    }
    params.weights[i] = w;
  }
  if (sha256_hex != nullptr) *sha256_hex = Sha256::Hex(digest);
  return params;
}

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    if (err == EACCES)
      return absl::PermissionDeniedError(absl::StrCat(path, ": permission denied"));
    return absl::InternalError(absl::StrCat(path, ": cannot open: ", std::strerror(err)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat(path, ": read error"));
  return std::move(buffer).str();
}

absl::StatusOr<std::shared_ptr<const Model>> LoadModelFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  std::string sha;
  absl::StatusOr<ModelParams> params = ParseModel(*bytes, &sha);
  if (!params.ok()) {
    return absl::Status(params.status().code(),
                        absl::StrCat(path, ": ", params.status().message()));
  }
  absl::StatusOr<std::shared_ptr<const Model>> model =
      Model::Create(*std::move(params), absl::StrCat(BaseName(path), "@", sha.substr(0, 12)));
  if (!model.ok()) {
    return absl::Status(model.status().code(), absl::StrCat(path, ": ", model.status().message()));
  }
  return model;
}

absl::Status WriteModelFile(const ModelParams& params, const std::string& path) {
  absl::StatusOr<std::string> bytes = SerializeModel(params);
  if (!bytes.ok()) return bytes.status();
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
    }
    out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(absl::StrCat(tmp, ": write failed"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("rename to ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace tiermesh::classifier
