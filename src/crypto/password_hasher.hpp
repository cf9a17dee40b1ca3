// Argon2id password hashing through libsodium (the only place that calls it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace bulwark {

// OWASP Password Storage Cheat Sheet: Argon2id, m = 19 MiB, t = 2, p = 1.
// (libsodium always uses one lane.)
struct Argon2Params {
  uint32_t iterations = 2;
  uint32_t memory_kib = 19 * 1024;
};

// Thread-safe; every call is CPU- and memory-heavy (tens of milliseconds):
// run it on the hashing pool, never on an I/O thread.
class PasswordHasher {
 public:
  explicit PasswordHasher(Argon2Params params);

  // A PHC string ("$argon2id$v=19$m=...,t=...,p=1$salt$hash") with a fresh random salt.
  // kInternal if libsodium fails (out of memory).
  Result<std::string> Hash(std::string_view password) const;
  // True when `password` matches `encoded`. False for a malformed `encoded`.
  bool Verify(std::string_view encoded, std::string_view password) const;
  // Does the same work as a Verify against a real hash, for unknown users,
  // so that "no such user" and "wrong password" cannot be told apart by time.
  void VerifyDummy(std::string_view password) const;
  // True when `encoded` was made with other parameters than the current ones.
  bool NeedsRehash(std::string_view encoded) const;

  const Argon2Params& params() const { return params_; }

  // The string VerifyDummy verifies against: an Argon2id PHC string at
  // `params` whose salt and hash are random bytes (nothing matches it).
  static std::string RandomPhcString(const Argon2Params& params);
  const std::string& dummy_hash() const { return dummy_hash_; }

 private:
  Argon2Params params_;
  std::string dummy_hash_;  // RandomPhcString(params_)
};

// Validates Argon2 parameters against libsodium's limits; kInvalidArgument with a reason.
Status ValidateArgon2Params(const Argon2Params& params);

}  // namespace bulwark
