#include "services/classifier/model.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "services/classifier/model_store.h"
#include "services/classifier/sha256.h"
#include "services/common/status/status_matchers.h"

namespace tiermesh::classifier {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::tiermesh::testing::IsOk;
using ::tiermesh::testing::StatusIs;

ModelParams SmallParams(WeightEncoding encoding = WeightEncoding::kF32, float scale = 1.0f) {
  ModelParams p;
  p.features.hash_bits = 10;
  p.encoding = encoding;
  p.weights.resize(size_t{p.features.num_features()} * kWeightStride);
  for (size_t i = 0; i < p.weights.size(); ++i) {
    p.weights[i] = scale * static_cast<float>((static_cast<int>(i * 37 % 101) - 50)) / 37.0f;
  }
  p.platt_a = 0.8f;
  p.platt_b = -0.25f;
  p.info.created_by = "model_test";
  p.info.data_sha256 = Sha256Hex("data");
  p.info.sources = {{"fixture", "CC0-1.0", "task", 12}, {"outcomes", "MIT", "complexity", 7}};
  p.info.attribution = "NOTICE.md";
  p.info.report_json = R"({"heldout_macro_f1":0.5})";
  return p;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/tiermesh_model_test_" +
         std::to_string(::getpid()) + "_" + name;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Replaces the JSON header and re-signs the file (a well-formed file with a
// different header).
std::string WithHeader(const std::string& file, const std::function<void(nlohmann::json*)>& edit) {
  uint32_t header_len = 0;
  for (int i = 0; i < 4; ++i) header_len |= uint32_t{static_cast<uint8_t>(file[12 + i])} << (8 * i);
  nlohmann::json header = nlohmann::json::parse(file.substr(24, header_len));
  edit(&header);
  const std::string text = header.dump();
  std::string out = file.substr(0, 12);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xFF));
  out += file.substr(16, 8);
  out += text;
  out += file.substr(24 + header_len, file.size() - 24 - header_len - 32);
  Sha256 sha;
  sha.Update(out);
  const Sha256::Digest d = sha.Finish();
  out.append(reinterpret_cast<const char*>(d.data()), d.size());
  return out;
}

TEST(ModelFileTest, RoundTripF32IsExact) {
  const ModelParams p = SmallParams();
  ASSERT_OK_AND_ASSIGN(const std::string bytes, SerializeModel(p));
  std::string sha;
  ASSERT_OK_AND_ASSIGN(const ModelParams back, ParseModel(bytes, &sha));
  EXPECT_EQ(back.weights, p.weights);
  EXPECT_EQ(back.platt_a, p.platt_a);
  EXPECT_EQ(back.platt_b, p.platt_b);
  EXPECT_EQ(back.features.hash_bits, 10u);
  EXPECT_EQ(back.features.seed, p.features.seed);
  EXPECT_EQ(back.info.data_sha256, p.info.data_sha256);
  ASSERT_EQ(back.info.sources.size(), 2u);
  EXPECT_EQ(back.info.sources[0].name, "fixture");
  EXPECT_EQ(back.info.sources[1].license, "MIT");
  EXPECT_EQ(back.info.sources[1].rows, 7);
  EXPECT_EQ(nlohmann::json::parse(back.info.report_json)["heldout_macro_f1"], 0.5);
  EXPECT_EQ(sha, Sha256Hex(std::string_view(bytes).substr(0, bytes.size() - 32)));
  // Serialisation is deterministic.
  ASSERT_OK_AND_ASSIGN(const std::string again, SerializeModel(back));
  EXPECT_EQ(again, bytes);
}

TEST(ModelFileTest, RoundTripF16MatchesRoundedWeights) {
  ModelParams p = SmallParams(WeightEncoding::kF16);
  ASSERT_OK_AND_ASSIGN(const std::string bytes, SerializeModel(p));
  ASSERT_OK_AND_ASSIGN(const ModelParams back, ParseModel(bytes));
  RoundWeightsToEncoding(&p);
  EXPECT_EQ(back.weights, p.weights);  // the trainer evaluates exactly what ships
  const ModelParams exact = SmallParams();
  for (size_t i = 0; i < exact.weights.size(); ++i) {
    EXPECT_NEAR(back.weights[i], exact.weights[i], 1e-3 * (1 + std::fabs(exact.weights[i])));
  }
  ASSERT_OK_AND_ASSIGN(const std::string f32, SerializeModel(SmallParams()));
  EXPECT_LT(bytes.size(), f32.size());
}

TEST(ModelFileTest, EveryTruncationIsRefused) {
  ASSERT_OK_AND_ASSIGN(const std::string bytes, SerializeModel(SmallParams()));
  for (size_t cut : {size_t{0}, size_t{7}, size_t{23}, size_t{55}, size_t{200}, bytes.size() / 2,
                     bytes.size() - 33, bytes.size() - 1}) {
    EXPECT_THAT(ParseModel(std::string_view(bytes).substr(0, cut)),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")))
        << "cut at " << cut;
  }
  EXPECT_THAT(ParseModel(bytes + "x"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("trailing bytes")));
}

TEST(ModelFileTest, TamperedBytesAreRefused) {
  ASSERT_OK_AND_ASSIGN(const std::string bytes, SerializeModel(SmallParams()));
  for (size_t at :
       {size_t{30}, size_t{500}, bytes.size() / 2, bytes.size() - 40, bytes.size() - 5}) {
    std::string tampered = bytes;
    tampered[at] = static_cast<char>(tampered[at] ^ 0x01);
    EXPECT_THAT(ParseModel(tampered),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum mismatch")))
        << "byte " << at;
  }
}

TEST(ModelFileTest, WrongMagicVersionAndHeaderAreRefused) {
  ASSERT_OK_AND_ASSIGN(const std::string bytes, SerializeModel(SmallParams()));
  std::string magic = bytes;
  magic[0] = 'X';
  EXPECT_THAT(ParseModel(magic), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("magic")));
  std::string version = bytes;
  version[8] = 9;
  EXPECT_THAT(ParseModel(version),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("format version 9")));
  EXPECT_THAT(
      ParseModel(WithHeader(bytes, [](nlohmann::json* h) { (*h)["feature_version"] = 999; })),
      StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("retrain")));
  EXPECT_THAT(ParseModel(WithHeader(
                  bytes, [](nlohmann::json* h) { (*h)["features"]["structural"][0] = "renamed"; })),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("structural")));
  EXPECT_THAT(ParseModel(WithHeader(bytes, [](nlohmann::json* h) { h->erase("provenance"); })),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model header")));
  EXPECT_THAT(
      ParseModel(WithHeader(bytes, [](nlohmann::json* h) { (*h)["features"]["hash_bits"] = 11; })),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rows")));
}

TEST(ModelFileTest, NonFiniteWeightsAreRefused) {
  ModelParams p = SmallParams();
  p.weights[3] = std::nanf("");
  EXPECT_THAT(SerializeModel(p), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("finite")));
  EXPECT_THAT(Model::Create(p, "v"), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  ModelParams short_weights = SmallParams();
  short_weights.weights.pop_back();
  EXPECT_THAT(Model::Create(short_weights, "v"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weights")));
}

TEST(ModelFileTest, LoadNamesTheFileAndVersion) {
  const std::string path = TempPath("load.tmcl");
  ASSERT_OK(WriteModelFile(SmallParams(), path));
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Model> model, LoadModelFile(path));
  EXPECT_THAT(model->version(), StartsWith("tiermesh_model_test_"));
  EXPECT_THAT(model->version(), HasSubstr(".tmcl@"));
  EXPECT_EQ(model->version().size() - model->version().find('@') - 1, 12u);
  EXPECT_THAT(LoadModelFile(path + ".missing"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr(".missing")));
  WriteBytes(path, "not a model");
  EXPECT_THAT(LoadModelFile(path), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path)));
  std::remove(path.c_str());
}

TEST(ModelTest, ScoreAndCalibrate) {
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<const Model> model, Model::Create(SmallParams(), "v"));
  FeatureVector fv;
  fv.features = {{5, 2.0f}};
  const Model::Scores s = model->Score(fv);
  for (int c = 0; c < kNumTasks; ++c) EXPECT_FLOAT_EQ(s.logits[c], 2.0f * model->Weight(5, c));
  EXPECT_FLOAT_EQ(s.complexity_logit, 2.0f * model->Weight(5, kComplexityColumn));
  EXPECT_NEAR(model->Calibrate(0), 1 / (1 + std::exp(0.25)), 1e-6);
}

class ModelStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = TempPath("store.tmcl"); }
  void TearDown() override { std::remove(path_.c_str()); }
  std::string path_;
};

TEST_F(ModelStoreTest, OpenFailsOnBadFile) {
  WriteBytes(path_, "garbage");
  EXPECT_THAT(ModelStore::Open(path_), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
}

TEST_F(ModelStoreTest, BadReloadKeepsServingTheOldModel) {
  ASSERT_OK(WriteModelFile(SmallParams(), path_));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<ModelStore> store, ModelStore::Open(path_));
  const std::shared_ptr<const Model> before = store->current();

  // Truncated file: refused, the old model keeps serving.
  ASSERT_OK_AND_ASSIGN(std::string bytes, SerializeModel(SmallParams(WeightEncoding::kF32, 2)));
  WriteBytes(path_, bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(store->Reload(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_EQ(store->current(), before);

  // Tampered file: same.
  bytes[bytes.size() / 2] ^= 0x10;
  WriteBytes(path_, bytes);
  EXPECT_THAT(store->ReloadIfChanged(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_EQ(store->current(), before);
  // Not retried until the file changes again.
  ASSERT_OK_AND_ASSIGN(bool swapped, store->ReloadIfChanged());
  EXPECT_FALSE(swapped);

  // A good new file is swapped in; readers holding the old one are unaffected.
  ASSERT_OK(WriteModelFile(SmallParams(WeightEncoding::kF32, 2), path_));
  ASSERT_OK_AND_ASSIGN(swapped, store->ReloadIfChanged());
  EXPECT_TRUE(swapped);
  EXPECT_NE(store->current(), before);
  EXPECT_NE(store->current()->version(), before->version());
  EXPECT_FLOAT_EQ(store->current()->Weight(7, 0), 2 * before->Weight(7, 0));
}

}  // namespace
}  // namespace tiermesh::classifier
