#include "services/common/crypto/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace tiermesh::crypto {
namespace {

struct Vector {
  std::string input;
  std::string hex;
};

// FIPS 180-4 / NIST CAVS example vectors.
TEST(Sha256, KnownVectors) {
  const Vector vectors[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const Vector& v : vectors) {
    EXPECT_EQ(Sha256Hex(v.input), v.hex) << v.input.size();
  }
}

TEST(Sha256, IncrementalEqualsOneShotAtEverySplit) {
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over: 0123456789";
  const std::string expected = Sha256Hex(text);
  for (size_t split = 0; split <= text.size(); ++split) {
    Sha256 h;
    h.Update(std::string_view(text).substr(0, split));
    h.Update(std::string_view(text).substr(split));
    EXPECT_EQ(Sha256::Hex(h.Finish()), expected) << split;
  }
}

}  // namespace
}  // namespace tiermesh::crypto
