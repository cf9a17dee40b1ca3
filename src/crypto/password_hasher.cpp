#include "crypto/password_hasher.hpp"

#include <sodium.h>

#include <array>
#include <stdexcept>
#include <string>

#include "crypto/tokens.hpp"

namespace bulwark {
namespace {

// libsodium's own floor is 8 KiB; the ceiling is ours: more than 4 GiB per hash is a typo.
constexpr uint64_t kMinMemoryKib = crypto_pwhash_argon2id_MEMLIMIT_MIN / 1024;
constexpr uint64_t kMaxMemoryKib = 4ULL * 1024 * 1024;
constexpr uint64_t kMinIterations = crypto_pwhash_argon2id_OPSLIMIT_MIN;

// libsodium reads PHC strings up to a NUL; refuse anything that could not be one of ours.
bool LooksLikePhcString(std::string_view encoded) {
  return !encoded.empty() && encoded.size() < crypto_pwhash_STRBYTES &&
         encoded.find('\0') == std::string_view::npos;
}

}  // namespace

Status ValidateArgon2Params(const Argon2Params& params) {
  if (params.iterations < kMinIterations) {
    return Error::InvalidArgument("argon2 iterations must be at least " +
                                  std::to_string(kMinIterations) + ", got " +
                                  std::to_string(params.iterations));
  }
  if (params.memory_kib < kMinMemoryKib || params.memory_kib > kMaxMemoryKib) {
    return Error::InvalidArgument(
        "argon2 memory_kib must be between " + std::to_string(kMinMemoryKib) + " and " +
        std::to_string(kMaxMemoryKib) + ", got " + std::to_string(params.memory_kib));
  }
  return Status::Ok();
}

PasswordHasher::PasswordHasher(Argon2Params params) : params_(params) {
  InitCrypto();
  if (Status s = ValidateArgon2Params(params_); !s.ok()) {
    throw std::invalid_argument(s.error().message());
  }
  // The dummy's password is random and forgotten: nothing can ever match it.
  Result<std::string> dummy = Hash(RandomHex(32));
  if (!dummy.ok()) throw std::runtime_error(dummy.error().message());
  dummy_hash_ = std::move(dummy).value();
}

Result<std::string> PasswordHasher::Hash(std::string_view password) const {
  std::array<char, crypto_pwhash_STRBYTES> out{};
  if (crypto_pwhash_str_alg(out.data(), password.data(), password.size(), params_.iterations,
                            static_cast<size_t>(params_.memory_kib) * 1024,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Error::Internal("argon2id hashing failed (out of memory?)");
  }
  return std::string(out.data());
}

bool PasswordHasher::Verify(std::string_view encoded, std::string_view password) const {
  if (!LooksLikePhcString(encoded)) return false;
  const std::string terminated(encoded);
  return crypto_pwhash_str_verify(terminated.c_str(), password.data(), password.size()) == 0;
}

void PasswordHasher::VerifyDummy(std::string_view password) const {
  // The result is meaningless (nothing matches the dummy); only the time spent matters.
  [[maybe_unused]] const int rc =
      crypto_pwhash_str_verify(dummy_hash_.c_str(), password.data(), password.size());
}

bool PasswordHasher::NeedsRehash(std::string_view encoded) const {
  if (!LooksLikePhcString(encoded)) return true;
  // Anything but argon2id (argon2i, bcrypt, ...) is upgraded on the next login.
  if (!encoded.starts_with(crypto_pwhash_argon2id_STRPREFIX)) return true;
  const std::string terminated(encoded);
  return crypto_pwhash_str_needs_rehash(terminated.c_str(), params_.iterations,
                                        static_cast<size_t>(params_.memory_kib) * 1024) != 0;
}

}  // namespace bulwark
