// SHA-256 (FIPS 180-4), used for model-file checksums, training-data
// provenance hashes and API-key hashes. Small and dependency-free so the serving binary needs no
// crypto library.
//
//   Sha256 h;
//   h.Update("abc");
//   std::string hex = Sha256::Hex(h.Finish());  // "ba7816bf..."
//   std::string hex2 = Sha256Hex("abc");        // the same, in one call
#ifndef TIERMESH_SERVICES_COMMON_CRYPTO_SHA256_H_
#define TIERMESH_SERVICES_COMMON_CRYPTO_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tiermesh::crypto {

class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
  void Update(std::string_view data);
  // The digest of everything passed to Update. Call once.
  Digest Finish();

  static std::string Hex(const Digest& digest);

 private:
  void Block(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

}  // namespace tiermesh::crypto

#endif  // TIERMESH_SERVICES_COMMON_CRYPTO_SHA256_H_
