// SigningKeyStore: the `signing_keys` table (SPEC §2): the keys that sign
// access tokens, with their rotation state. Every replica reads it; the
// state changes are compare-and-set so that replicas rotating at once agree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace bulwark {

// next: published in the JWKS, not signing yet; active: signs (at most one);
// retired: no longer signs, published until `expires_at`, then deleted.
enum class KeyState { kNext, kActive, kRetired };

const char* KeyStateName(KeyState state);  // "next", "active", "retired"
std::optional<KeyState> ParseKeyState(std::string_view name);

struct SigningKeyRecord {
  std::string kid;
  std::string algorithm;    // "ES256" or "EdDSA"
  std::string private_key;  // sealed text (or PEM when no master key): a secret, never logged
  std::string public_jwk;   // JSON object, stored verbatim
  KeyState state = KeyState::kNext;
  int64_t created_at = 0;
  // next: when it is planned to start signing (each replica promotes it once
  // its own JWKS cache lifetime has passed since created_at);
  // active / retired: when it started signing.
  int64_t activated_at = 0;
  int64_t retired_at = 0;  // 0 until retired
  int64_t expires_at =
      0;  // retired: when every token it signed has expired (may be deleted); else 0

  bool operator==(const SigningKeyRecord&) const = default;
};

// Thread-safe, blocking; see UserStore for the kUnavailable rule.
class SigningKeyStore {
 public:
  virtual ~SigningKeyStore() = default;
  SigningKeyStore() = default;
  SigningKeyStore(const SigningKeyStore&) = delete;
  SigningKeyStore& operator=(const SigningKeyStore&) = delete;

  // kAlreadyExists when the kid is taken, or when the record is `active` (or
  // `next`) and another key already is: there is at most one active and at
  // most one next key, which makes bootstrap and rotation races safe.
  virtual Status CreateSigningKey(const SigningKeyRecord& key) = 0;
  // Every key, ordered by created_at, then kid.
  virtual Result<std::vector<SigningKeyRecord>> ListSigningKeys() = 0;
  // kNotFound when absent.
  virtual Result<SigningKeyRecord> GetSigningKey(const std::string& kid) = 0;
  // Compare-and-set: moves the key from `from` to `to` only if it is in
  // `from` now. true when this call changed it, false when the key is in
  // another state (someone else won the race). Moving to active sets
  // activated_at = now; moving to retired sets retired_at = now and
  // expires_at. kNotFound when no such kid; kAlreadyExists when `to` is
  // active / next and another key already holds that state.
  virtual Result<bool> UpdateSigningKeyState(const std::string& kid, KeyState from, KeyState to,
                                             int64_t now, int64_t expires_at) = 0;
  // Idempotent: OK when absent.
  virtual Status DeleteSigningKey(const std::string& kid) = 0;
};

}  // namespace bulwark
