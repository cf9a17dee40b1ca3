// Encryption of secrets at rest (signing keys) under the master key
// BULWARK_MASTER_KEY: XChaCha20-Poly1305-IETF (libsodium), a random 192-bit
// nonce per message, and associated data that binds a ciphertext to its place
// (for example "signing-key:<kid>"), so a sealed value cannot be moved to
// another row. Sealed text: "v1:" + base64url(nonce || ciphertext || tag).
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace bulwark {

struct MasterKey {
  static constexpr std::size_t kBytes = 32;

  // 32 bytes as base64 (with or without padding), base64url (with or without
  // padding) or 64 hex characters; surrounding whitespace is ignored.
  // kInvalidArgument with a one-line message that never quotes the value.
  static Result<MasterKey> Parse(std::string_view text);
  // 32 random bytes (tests, `bulwark` key generation).
  static MasterKey Generate();

  MasterKey() = default;
  MasterKey(const MasterKey&) = default;
  MasterKey& operator=(const MasterKey&) = default;
  ~MasterKey();  // wipes the bytes

  std::array<unsigned char, kBytes> bytes{};
};

// "v1:<base64url(nonce||ciphertext)>". kInternal only if libsodium fails.
Result<std::string> Seal(const MasterKey& key, std::string_view plaintext,
                         std::string_view associated_data);
// The plaintext of a Seal() output. kInvalidArgument for text that is not a
// sealed value (unknown version, bad base64url, too short); kUnauthorized when
// authentication fails: tampered, another key, or other associated data.
Result<std::string> Open(const MasterKey& key, std::string_view sealed,
                         std::string_view associated_data);

}  // namespace bulwark
