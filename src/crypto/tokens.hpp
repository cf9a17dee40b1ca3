// Random tokens, hashing and constant-time comparison (libsodium / OpenSSL).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bulwark {

// Must be called once before any other function here (idempotent, thread-safe).
void InitCrypto();

// 256 random bits, base64url without padding (43 characters).
std::string NewSessionToken();
// A random UUID v4 in lower-case canonical text form.
std::string NewUuid();
// n random bytes, lower-case hex (2n characters).
std::string RandomHex(std::size_t n_bytes);
// Lower-case hex SHA-256 of the input (64 characters).
std::string Sha256Hex(std::string_view data);
// Constant-time equality (length is not secret).
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// RFC 4648 §5 base64url without padding.
std::string Base64UrlEncode(std::string_view data);
// Strict inverse of Base64UrlEncode: only the URL-safe alphabet, no padding,
// no whitespace, zero unused trailing bits (one text per byte string);
// nullopt otherwise.
std::optional<std::string> Base64UrlDecode(std::string_view text);
// Standard base64 with padding (RFC 4648 §4), e.g. HTTP Basic credentials;
// nullopt for anything else.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace bulwark
