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
  dummy_hash_ = RandomPhcString(params_);
}

// An Argon2id PHC string with our parameters, a random salt and a random
// "hash": verifying against it costs exactly one Argon2id at these parameters
// (the work depends on them, not on the stored bytes), and no password can
// match 32 random bytes. Built directly, so that starting a replica does not
// spend a whole hash (tens of milliseconds) before it can serve.
std::string PasswordHasher::RandomPhcString(const Argon2Params& params) {
  std::array<unsigned char, crypto_pwhash_argon2id_SALTBYTES> salt{};
  std::array<unsigned char, 32> digest{};  // what crypto_pwhash_str stores
  randombytes_buf(salt.data(), salt.size());
  randombytes_buf(digest.data(), digest.size());
  const auto base64 = [](const unsigned char* bytes, std::size_t n) {
    std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING), '\0');
    sodium_bin2base64(out.data(), out.size(), bytes, n, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    out.resize(std::char_traits<char>::length(out.c_str()));
    return out;
  };
  return std::string(crypto_pwhash_argon2id_STRPREFIX) +
         "v=19$m=" + std::to_string(params.memory_kib) + ",t=" + std::to_string(params.iterations) +
         ",p=1$" + base64(salt.data(), salt.size()) + "$" + base64(digest.data(), digest.size());
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
