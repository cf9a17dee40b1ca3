// JSON Web Tokens for Bulwark's access tokens (SPEC §3): compact JWS signed
// with ES256 (default; raw r||s signatures, RFC 7518 §3.4) or EdDSA (Ed25519,
// RFC 8037), public keys as JWK / JWKS, and strict validation. OpenSSL 3 only;
// no Asio, no stores. Thread-safe after construction.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace bulwark::jwt {

enum class Algorithm { kES256, kEdDSA };
const char* AlgorithmName(Algorithm alg);  // "ES256", "EdDSA"
std::optional<Algorithm> ParseAlgorithm(std::string_view name);

// Registered claims plus Bulwark's own.
struct Claims {
  std::string iss;
  std::string sub;
  std::vector<std::string> aud;  // serialised as a string when it has one element
  int64_t exp = 0;
  int64_t iat = 0;
  int64_t nbf = 0;  // 0: absent
  std::string jti;
  std::vector<std::string> roles;  // "roles"
  std::string client_id;           // "client_id" (empty: absent)
  std::string scope;               // "scope" (empty: absent)
  std::string username;            // "preferred_username" (empty: absent)
};

// A private key that signs, with its kid. Copyable handle (shared key).
class SigningKey {
 public:
  static Result<SigningKey> Generate(Algorithm alg, std::string kid);
  // From a PKCS#8 PEM private key as produced by PrivateKeyPem().
  static Result<SigningKey> FromPrivateKeyPem(Algorithm alg, std::string kid, std::string_view pem);

  Algorithm algorithm() const { return alg_; }
  const std::string& kid() const { return kid_; }
  // PKCS#8 PEM; a secret (store it encrypted, never log it).
  std::string PrivateKeyPem() const;
  // {"kty":"EC","crv":"P-256","x":"..","y":"..","kid":"..","alg":"ES256","use":"sig"}
  // or {"kty":"OKP","crv":"Ed25519","x":"..",...}
  std::string PublicJwk() const;
  // header {"alg","typ":"JWT","kid"} . claims . signature
  Result<std::string> Sign(const Claims& claims) const;

  struct Impl;

 private:
  SigningKey(Algorithm alg, std::string kid, std::shared_ptr<const Impl> impl)
      : alg_(alg), kid_(std::move(kid)), impl_(std::move(impl)) {}
  Algorithm alg_;
  std::string kid_;
  std::shared_ptr<const Impl> impl_;
};

struct ValidationOptions;

// Public keys by kid, for validation.
class KeySet {
 public:
  KeySet();
  ~KeySet();
  KeySet(KeySet&&) noexcept;
  KeySet& operator=(KeySet&&) noexcept;

  // {"keys":[jwk, ...]}: EC P-256 and OKP Ed25519 keys with a kid; other keys
  // are skipped. kInvalidArgument for malformed JSON or a malformed key.
  static Result<KeySet> FromJwks(std::string_view jwks_json);
  Status AddJwk(std::string_view jwk_json);
  void Add(const SigningKey& key);  // its public half
  bool Contains(std::string_view kid) const;
  std::size_t size() const;
  // {"keys":[...]} of every key.
  std::string ToJwks() const;

  struct Impl;

 private:
  friend Result<Claims> Validate(std::string_view token, const KeySet& keys,
                                 const ValidationOptions& options);
  std::unique_ptr<Impl> impl_;
};

struct ValidationOptions {
  std::string issuer;    // required match of "iss"
  std::string audience;  // "aud" must contain it (empty: skip)
  std::vector<Algorithm> allowed = {Algorithm::kES256, Algorithm::kEdDSA};
  int64_t now = 0;             // Unix seconds
  int64_t leeway_seconds = 0;  // for exp / nbf / iat
  std::size_t max_token_bytes = 8192;
};

// Every failure is kUnauthorized with a short reason ("expired", "bad
// signature", "unknown kid", "algorithm not allowed", ...): `alg: none`,
// HS256, an algorithm that does not match the key's type, malformed base64url
// or JSON, missing exp, wrong iss/aud, not yet valid, oversized tokens.
Result<Claims> Validate(std::string_view token, const KeySet& keys,
                        const ValidationOptions& options);

// The "kid" of a token's header without validating anything (kUnauthorized
// when the header is malformed): lets a cache refetch the JWKS on an unknown kid.
Result<std::string> PeekKid(std::string_view token);

}  // namespace bulwark::jwt
