#include "crypto/secret_box.hpp"

#include <sodium.h>

#include <cstring>
#include <string>

#include "crypto/tokens.hpp"

namespace bulwark {
namespace {

constexpr std::string_view kPrefix = "v1:";
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == MasterKey::kBytes);

constexpr const char* kBadMasterKey =
    "BULWARK_MASTER_KEY must be 32 bytes as base64, base64url or 64 hex characters";

std::string_view Trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

bool IsHex(std::string_view s) {
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

const unsigned char* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

MasterKey::~MasterKey() { sodium_memzero(bytes.data(), bytes.size()); }

Result<MasterKey> MasterKey::Parse(std::string_view text) {
  InitCrypto();
  text = Trim(text);
  MasterKey key;
  std::size_t len = 0;
  const char* end = nullptr;
  if (text.size() == 2 * kBytes && IsHex(text)) {
    if (sodium_hex2bin(key.bytes.data(), key.bytes.size(), text.data(), text.size(), nullptr, &len,
                       &end) == 0 &&
        len == kBytes && end == text.data() + text.size())
      return key;
    return Error::InvalidArgument(kBadMasterKey);
  }
  for (const int variant :
       {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING}) {
    if (sodium_base642bin(key.bytes.data(), key.bytes.size(), text.data(), text.size(), nullptr,
                          &len, &end, variant) == 0 &&
        len == kBytes && end == text.data() + text.size())
      return key;
  }
  return Error::InvalidArgument(kBadMasterKey);
}

MasterKey MasterKey::Generate() {
  InitCrypto();
  MasterKey key;
  crypto_aead_xchacha20poly1305_ietf_keygen(key.bytes.data());
  return key;
}

Result<std::string> Seal(const MasterKey& key, std::string_view plaintext,
                         std::string_view associated_data) {
  InitCrypto();
  std::string box(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(box.data());
  randombytes_buf(out, kNonceBytes);
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(
          out + kNonceBytes, &written, Bytes(plaintext), plaintext.size(), Bytes(associated_data),
          associated_data.size(), nullptr, out, key.bytes.data()) != 0 ||
      written != plaintext.size() + kTagBytes)
    return Error::Internal("encryption failed");
  return std::string(kPrefix) + Base64UrlEncode(box);
}

Result<std::string> Open(const MasterKey& key, std::string_view sealed,
                         std::string_view associated_data) {
  InitCrypto();
  if (sealed.substr(0, kPrefix.size()) != kPrefix)
    return Error::InvalidArgument("not a sealed value (expected the v1: prefix)");
  const auto box = Base64UrlDecode(sealed.substr(kPrefix.size()));
  if (!box) return Error::InvalidArgument("sealed value is not base64url");
  if (box->size() < kNonceBytes + kTagBytes)
    return Error::InvalidArgument("sealed value is too short");
  const auto* in = Bytes(*box);
  std::string plain(box->size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(plain.data()),
                                                 &len, nullptr, in + kNonceBytes,
                                                 box->size() - kNonceBytes, Bytes(associated_data),
                                                 associated_data.size(), in, key.bytes.data()) != 0)
    return Error::Unauthorized(
        "sealed value failed authentication (wrong master key, wrong associated data or tampered)");
  plain.resize(len);
  return plain;
}

}  // namespace bulwark
