#include "jwt/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <array>
#include <boost/json.hpp>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <utility>

namespace bulwark::jwt {

namespace json = boost::json;

namespace {

constexpr std::size_t kCoordinateBytes = 32;        // P-256 field element
constexpr std::size_t kEs256SignatureBytes = 64;    // r || s
constexpr std::size_t kEd25519PublicKeyBytes = 32;  // RFC 8032
constexpr std::size_t kEd25519SignatureBytes = 64;  // RFC 8032
constexpr std::size_t kMaxJwksBytes = 1024 * 1024;  // a JWKS is a few KiB
constexpr std::size_t kMaxKidBytes = 256;

// --- base64url (RFC 4648 §5, no padding) --------------------------------------
// Not crypto's Base64Url*: jwt is also linked into libbulwark-client, which
// applications embed, and crypto would bring libsodium along with it.

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> MakeDecodeTable() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = MakeDecodeTable();

std::string B64Url(const unsigned char* data, std::size_t n) {
  std::string out;
  out.reserve((n * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{data[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}
std::string B64Url(std::string_view s) {
  return B64Url(reinterpret_cast<const unsigned char*>(s.data()), s.size());
}

// Strict: only the URL-safe alphabet, no padding, no whitespace, and the unused
// low bits of the last character must be zero (one encoding per byte string).
std::optional<std::string> B64UrlDecode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (const char c : in) {
    const int8_t v = kDecode[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// --- OpenSSL handles ------------------------------------------------------------

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct SigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using SigPtr = std::unique_ptr<ECDSA_SIG, SigFree>;
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;

// SHA-256, fetched once (implicit fetches per call cost a lock and a lookup).
const EVP_MD* Sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

bool IsP256(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC") != 1) return false;
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &len) != 1)
    return false;
  const std::string_view name(group, len);
  return name == "prime256v1" || name == "P-256" || name == "secp256r1";
}

bool IsEd25519(EVP_PKEY* pkey) { return EVP_PKEY_is_a(pkey, "ED25519") == 1; }

bool MatchesAlgorithm(EVP_PKEY* pkey, Algorithm alg) {
  return alg == Algorithm::kES256 ? IsP256(pkey) : IsEd25519(pkey);
}

// Initialised OpenSSL contexts of one key, kept for reuse: creating and
// initialising a context fetches the algorithm from the provider and
// duplicates the key, which costs as much as a third of an Ed25519 signature.
// A context that failed an operation is freed, not kept. Thread-safe.
template <typename Ctx, void (*FreeFn)(Ctx*)>
class ContextPool {
 public:
  ContextPool() = default;
  ContextPool(const ContextPool&) = delete;
  ContextPool& operator=(const ContextPool&) = delete;
  ~ContextPool() {
    for (Ctx* c : free_) FreeFn(c);
  }
  Ctx* Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.empty()) return nullptr;
    Ctx* c = free_.back();
    free_.pop_back();
    return c;
  }
  void Give(Ctx* c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (free_.size() < kMaxPooled) {
        free_.push_back(c);
        return;
      }
    }
    FreeFn(c);
  }

  // A context from the pool (or `init` of a new one) returned on destruction
  // when keep() was called, freed otherwise.
  class Lease {
   public:
    template <typename Init>
    Lease(ContextPool& pool, Init&& init) : pool_(pool), ctx_(pool.Take()) {
      if (ctx_) return;
      ctx_ = init();
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (!ctx_) return;
      if (keep_) {
        pool_.Give(ctx_);
      } else {
        FreeFn(ctx_);
      }
    }
    Ctx* get() const { return ctx_; }
    void keep() { keep_ = true; }

   private:
    ContextPool& pool_;
    Ctx* ctx_;
    bool keep_ = false;
  };

 private:
  static constexpr std::size_t kMaxPooled = 64;
  std::mutex mu_;
  std::vector<Ctx*> free_;
};

// A key and its reusable contexts (EdDSA: EVP_MD_CTX for DigestSign/Verify;
// ES256: EVP_PKEY_CTX for signing a SHA-256 digest).
struct KeyOps {
  KeyOps(PkeyPtr k, Algorithm a) : pkey(std::move(k)), alg(a) {}
  PkeyPtr pkey;
  Algorithm alg;
  mutable ContextPool<EVP_MD_CTX, EVP_MD_CTX_free> md_sign, md_verify;
  mutable ContextPool<EVP_PKEY_CTX, EVP_PKEY_CTX_free> pk_sign, pk_verify;
};

EVP_MD_CTX* NewEdCtx(EVP_PKEY* pkey, bool sign) {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) return nullptr;
  const int rc =
      sign ? EVP_DigestSignInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey, nullptr)
           : EVP_DigestVerifyInit_ex(ctx.get(), nullptr, nullptr, nullptr, nullptr, pkey, nullptr);
  return rc == 1 ? ctx.release() : nullptr;
}

EVP_PKEY_CTX* NewEcCtx(EVP_PKEY* pkey, bool sign) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx) return nullptr;
  const int rc = sign ? EVP_PKEY_sign_init(ctx.get()) : EVP_PKEY_verify_init(ctx.get());
  return rc == 1 ? ctx.release() : nullptr;
}

// The signature of `input` in JWS form (ES256: raw r||s; EdDSA: the 64 bytes).
std::optional<std::string> SignRaw(const KeyOps& key, std::string_view input) {
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  EVP_PKEY* pkey = key.pkey.get();
  if (key.alg == Algorithm::kEdDSA) {
    decltype(key.md_sign)::Lease ctx(key.md_sign, [&] { return NewEdCtx(pkey, true); });
    if (!ctx.get()) return std::nullopt;
    std::string sig(kEd25519SignatureBytes, '\0');
    std::size_t len = sig.size();
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, data,
                       input.size()) != 1 ||
        len != kEd25519SignatureBytes)
      return std::nullopt;
    ctx.keep();
    return sig;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data, input.size(), digest, &digest_len, Sha256(), nullptr) != 1)
    return std::nullopt;
  unsigned char der[128];  // an ECDSA-P256 DER signature is at most 72 bytes
  std::size_t der_len = sizeof(der);
  {
    decltype(key.pk_sign)::Lease ctx(key.pk_sign, [&] { return NewEcCtx(pkey, true); });
    if (!ctx.get() || EVP_PKEY_sign(ctx.get(), der, &der_len, digest, digest_len) != 1)
      return std::nullopt;
    ctx.keep();
  }
  const unsigned char* p = der;
  SigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return std::nullopt;
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string out(kEs256SignatureBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (BN_bn2binpad(r, o, kCoordinateBytes) != static_cast<int>(kCoordinateBytes) ||
      BN_bn2binpad(s, o + kCoordinateBytes, kCoordinateBytes) != static_cast<int>(kCoordinateBytes))
    return std::nullopt;
  return out;
}

bool VerifyRaw(const KeyOps& key, std::string_view input, std::string_view sig) {
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  const auto* s = reinterpret_cast<const unsigned char*>(sig.data());
  EVP_PKEY* pkey = key.pkey.get();
  if (key.alg == Algorithm::kEdDSA) {
    if (sig.size() != kEd25519SignatureBytes) return false;
    decltype(key.md_verify)::Lease ctx(key.md_verify, [&] { return NewEdCtx(pkey, false); });
    if (!ctx.get() || EVP_DigestVerify(ctx.get(), s, sig.size(), data, input.size()) != 1)
      return false;
    ctx.keep();
    return true;
  }
  if (sig.size() != kEs256SignatureBytes) return false;
  SigPtr ecdsa(ECDSA_SIG_new());
  BnPtr r(BN_bin2bn(s, kCoordinateBytes, nullptr));
  BnPtr ss(BN_bin2bn(s + kCoordinateBytes, kCoordinateBytes, nullptr));
  if (!ecdsa || !r || !ss || ECDSA_SIG_set0(ecdsa.get(), r.get(), ss.get()) != 1) return false;
  r.release();  // owned by ecdsa now
  ss.release();
  unsigned char der[128];
  unsigned char* p = der;
  const int der_len = i2d_ECDSA_SIG(ecdsa.get(), nullptr);
  if (der_len <= 0 || static_cast<std::size_t>(der_len) > sizeof(der) ||
      i2d_ECDSA_SIG(ecdsa.get(), &p) != der_len)
    return false;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  if (EVP_Digest(data, input.size(), digest, &digest_len, Sha256(), nullptr) != 1) return false;
  decltype(key.pk_verify)::Lease ctx(key.pk_verify, [&] { return NewEcCtx(pkey, false); });
  if (!ctx.get() ||
      EVP_PKEY_verify(ctx.get(), der, static_cast<std::size_t>(der_len), digest, digest_len) != 1)
    return false;
  ctx.keep();
  return true;
}

// The public key as a JWK object (kid, alg, use included).
std::optional<json::object> PublicJwkObject(EVP_PKEY* pkey, Algorithm alg, const std::string& kid) {
  json::object jwk;
  if (alg == Algorithm::kEdDSA) {
    unsigned char raw[kEd25519PublicKeyBytes];
    std::size_t len = sizeof(raw);
    if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof(raw))
      return std::nullopt;
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = B64Url(raw, len);
  } else {
    unsigned char point[1 + 2 * kCoordinateBytes];
    std::size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                        sizeof(point), &len) != 1 ||
        len != sizeof(point) || point[0] != 0x04)
      return std::nullopt;
    jwk["kty"] = "EC";
    jwk["crv"] = "P-256";
    jwk["x"] = B64Url(point + 1, kCoordinateBytes);
    jwk["y"] = B64Url(point + 1 + kCoordinateBytes, kCoordinateBytes);
  }
  jwk["kid"] = kid;
  jwk["alg"] = AlgorithmName(alg);
  jwk["use"] = "sig";
  return jwk;
}

std::optional<json::value> ParseJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

const json::string* StringField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v ? v->if_string() : nullptr;
}

// A NumericDate (RFC 7519 §2): an integer number of seconds, or a finite
// number (fractions dropped). nullopt when the value is not a number in range.
std::optional<int64_t> NumericDate(const json::value& v) {
  if (const auto* i = v.if_int64()) return *i;
  if (const auto* u = v.if_uint64()) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* d = v.if_double()) {
    // 2^62: far beyond any date, and exactly representable.
    if (!std::isfinite(*d) || std::fabs(*d) > 4.6e18) return std::nullopt;
    return static_cast<int64_t>(std::floor(*d));
  }
  return std::nullopt;
}

Error Reject(std::string reason) { return Error::Unauthorized(std::move(reason)); }

struct Segments {
  std::string_view header, payload, signature, signing_input;
};

std::optional<Segments> Split(std::string_view token) {
  const std::size_t a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  const std::size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos)
    return std::nullopt;
  Segments s{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1),
             token.substr(0, b)};
  if (s.header.empty() || s.payload.empty() || s.signature.empty()) return std::nullopt;
  return s;
}

Result<json::object> DecodeObject(std::string_view segment, const char* what) {
  const auto raw = B64UrlDecode(segment);
  if (!raw) return Reject(std::string("malformed ") + what + " encoding");
  auto v = ParseJson(*raw);
  if (!v || !v->is_object()) return Reject(std::string("malformed ") + what);
  return std::move(v->as_object());
}

}  // namespace

// --- algorithms -------------------------------------------------------------------

const char* AlgorithmName(Algorithm alg) { return alg == Algorithm::kES256 ? "ES256" : "EdDSA"; }

std::optional<Algorithm> ParseAlgorithm(std::string_view name) {
  if (name == "ES256") return Algorithm::kES256;
  if (name == "EdDSA") return Algorithm::kEdDSA;
  return std::nullopt;
}

// --- SigningKey -------------------------------------------------------------------

struct SigningKey::Impl {
  Impl(PkeyPtr k, Algorithm alg) : ops(std::move(k), alg) {}
  KeyOps ops;
  std::string header_b64;  // base64url of the JOSE header, the same for every token
  std::string public_jwk;
};

namespace {

Result<std::shared_ptr<const SigningKey::Impl>> MakeImpl(PkeyPtr pkey, Algorithm alg,
                                                         const std::string& kid) {
  if (kid.empty() || kid.size() > kMaxKidBytes)
    return Error::InvalidArgument("kid must be 1 to 256 bytes");
  if (!MatchesAlgorithm(pkey.get(), alg))
    return Error::InvalidArgument(std::string("the key is not a ") +
                                  (alg == Algorithm::kES256 ? "P-256" : "Ed25519") + " key");
  auto impl = std::make_shared<SigningKey::Impl>(std::move(pkey), alg);
  const auto jwk = PublicJwkObject(impl->ops.pkey.get(), alg, kid);
  if (!jwk) return Error::Internal("cannot export the public key");
  impl->public_jwk = json::serialize(*jwk);
  json::object header;
  header["alg"] = AlgorithmName(alg);
  header["typ"] = "JWT";
  header["kid"] = kid;
  impl->header_b64 = B64Url(json::serialize(header));
  return std::shared_ptr<const SigningKey::Impl>(std::move(impl));
}

}  // namespace

Result<SigningKey> SigningKey::Generate(Algorithm alg, std::string kid) {
  PkeyPtr pkey(alg == Algorithm::kES256 ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                                        : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!pkey) return Error::Internal("key generation failed");
  auto impl = MakeImpl(std::move(pkey), alg, kid);
  if (!impl) return impl.error();
  return SigningKey(alg, std::move(kid), std::move(impl).value());
}

Result<SigningKey> SigningKey::FromPrivateKeyPem(Algorithm alg, std::string kid,
                                                 std::string_view pem) {
  if (pem.empty() || pem.size() > 16 * 1024) return Error::InvalidArgument("malformed private key");
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Error::Internal("out of memory");
  // No passphrase callback: an encrypted PEM is refused rather than prompting.
  PkeyPtr pkey(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
  if (!pkey) return Error::InvalidArgument("malformed private key");
  auto impl = MakeImpl(std::move(pkey), alg, kid);
  if (!impl) return impl.error();
  return SigningKey(alg, std::move(kid), std::move(impl).value());
}

std::string SigningKey::PrivateKeyPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->ops.pkey.get(), nullptr, nullptr, 0,
                                       nullptr, nullptr) != 1)
    return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<std::size_t>(len));
  // The BIO's buffer held the secret: wipe it before it is freed.
  OPENSSL_cleanse(data, static_cast<std::size_t>(len));
  return out;
}

std::string SigningKey::PublicJwk() const { return impl_->public_jwk; }

Result<std::string> SigningKey::Sign(const Claims& c) const {
  json::object payload;
  if (!c.iss.empty()) payload["iss"] = c.iss;
  if (!c.sub.empty()) payload["sub"] = c.sub;
  if (c.aud.size() == 1) {
    payload["aud"] = c.aud.front();
  } else if (!c.aud.empty()) {
    json::array aud;
    for (const auto& a : c.aud) aud.emplace_back(a);
    payload["aud"] = std::move(aud);
  }
  payload["exp"] = c.exp;
  payload["iat"] = c.iat;
  if (c.nbf != 0) payload["nbf"] = c.nbf;
  if (!c.jti.empty()) payload["jti"] = c.jti;
  json::array roles;
  for (const auto& r : c.roles) roles.emplace_back(r);
  payload["roles"] = std::move(roles);
  if (!c.client_id.empty()) payload["client_id"] = c.client_id;
  if (!c.scope.empty()) payload["scope"] = c.scope;
  if (!c.username.empty()) payload["preferred_username"] = c.username;

  std::string token = impl_->header_b64;
  token += '.';
  token += B64Url(json::serialize(payload));
  const auto sig = SignRaw(impl_->ops, token);
  if (!sig) return Error::Internal("signing failed");
  token += '.';
  token += B64Url(*sig);
  return token;
}

// --- KeySet -----------------------------------------------------------------------

namespace {

struct PublicKey {
  Algorithm alg;
  std::shared_ptr<const KeyOps> ops;
  std::string jwk;  // serialised public JWK
};

// A public key from a JWK object; nullopt (with ok status) for a key of a type
// we do not use, an error for a malformed one.
Result<std::optional<std::pair<std::string, PublicKey>>> ParseJwk(const json::object& o) {
  using Out = std::optional<std::pair<std::string, PublicKey>>;
  const json::string* kty = StringField(o, "kty");
  if (!kty) return Error::InvalidArgument("JWK without kty");
  const json::string* crv = StringField(o, "crv");
  Algorithm alg;
  if (*kty == "EC" && crv && *crv == "P-256") {
    alg = Algorithm::kES256;
  } else if (*kty == "OKP" && crv && *crv == "Ed25519") {
    alg = Algorithm::kEdDSA;
  } else {
    return Out{};  // RSA, other curves, symmetric keys: not ours
  }
  if (const json::value* use = o.if_contains("use")) {
    if (!use->is_string()) return Error::InvalidArgument("JWK use is not a string");
    if (use->as_string() != "sig") return Out{};
  }
  if (const json::value* a = o.if_contains("alg")) {
    if (!a->is_string() || a->as_string() != AlgorithmName(alg))
      return Error::InvalidArgument("JWK alg does not match its key type");
  }
  const json::value* kid_v = o.if_contains("kid");
  if (!kid_v) return Out{};  // a key without a kid cannot be selected
  if (!kid_v->is_string() || kid_v->as_string().empty() || kid_v->as_string().size() > kMaxKidBytes)
    return Error::InvalidArgument("JWK kid is malformed");
  const std::string kid(kid_v->as_string());

  const json::string* x = StringField(o, "x");
  if (!x) return Error::InvalidArgument("JWK without x");
  const auto xb = B64UrlDecode(*x);
  PkeyPtr pkey;
  if (alg == Algorithm::kEdDSA) {
    if (!xb || xb->size() != kEd25519PublicKeyBytes)
      return Error::InvalidArgument("JWK x is malformed");
    pkey.reset(EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(xb->data()), xb->size()));
    if (!pkey) return Error::InvalidArgument("JWK is not a valid Ed25519 key");
  } else {
    const json::string* y = StringField(o, "y");
    if (!y) return Error::InvalidArgument("JWK without y");
    const auto yb = B64UrlDecode(*y);
    if (!xb || xb->size() != kCoordinateBytes || !yb || yb->size() != kCoordinateBytes)
      return Error::InvalidArgument("JWK x or y is malformed");
    unsigned char point[1 + 2 * kCoordinateBytes];
    point[0] = 0x04;  // uncompressed
    std::memcpy(point + 1, xb->data(), kCoordinateBytes);
    std::memcpy(point + 1 + kCoordinateBytes, yb->data(), kCoordinateBytes);
    char group[] = "prime256v1";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end()};
    PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    // fromdata decodes the point, which checks that it lies on the curve.
    if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) !=
            1)
      return Error::InvalidArgument("JWK is not a valid P-256 key");
    pkey.reset(raw);
    PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1)
      return Error::InvalidArgument("JWK is not a valid P-256 key");
  }
  auto jwk = PublicJwkObject(pkey.get(), alg, kid);
  if (!jwk) return Error::InvalidArgument("JWK cannot be re-encoded");
  PublicKey key{alg, std::make_shared<const KeyOps>(std::move(pkey), alg), json::serialize(*jwk)};
  return Out{std::pair{kid, std::move(key)}};
}

}  // namespace

struct KeySet::Impl {
  std::map<std::string, PublicKey, std::less<>> keys;
};

KeySet::KeySet() : impl_(std::make_unique<Impl>()) {}
KeySet::~KeySet() = default;
KeySet::KeySet(KeySet&&) noexcept = default;
KeySet& KeySet::operator=(KeySet&&) noexcept = default;

Result<KeySet> KeySet::FromJwks(std::string_view jwks_json) {
  if (jwks_json.size() > kMaxJwksBytes) return Error::InvalidArgument("JWKS is too large");
  auto v = ParseJson(jwks_json);
  if (!v || !v->is_object()) return Error::InvalidArgument("JWKS is not a JSON object");
  const json::value* keys = v->as_object().if_contains("keys");
  if (!keys || !keys->is_array()) return Error::InvalidArgument("JWKS has no keys array");
  KeySet set;
  for (const json::value& k : keys->as_array()) {
    if (!k.is_object()) return Error::InvalidArgument("JWKS key is not an object");
    auto parsed = ParseJwk(k.as_object());
    if (!parsed) return parsed.error();
    if (!parsed->has_value()) continue;
    auto& [kid, key] = **parsed;
    if (!set.impl_->keys.emplace(kid, std::move(key)).second)
      return Error::InvalidArgument("JWKS has two keys with the same kid");
  }
  return set;
}

Status KeySet::AddJwk(std::string_view jwk_json) {
  if (!impl_) impl_ = std::make_unique<Impl>();
  if (jwk_json.size() > kMaxJwksBytes) return Error::InvalidArgument("JWK is too large");
  auto v = ParseJson(jwk_json);
  if (!v || !v->is_object()) return Error::InvalidArgument("JWK is not a JSON object");
  auto parsed = ParseJwk(v->as_object());
  if (!parsed) return parsed.error();
  if (!parsed->has_value())
    return Error::InvalidArgument(
        "unsupported JWK (no kid, or not a signing key of P-256 or Ed25519)");
  auto& [kid, key] = **parsed;
  impl_->keys.insert_or_assign(kid, std::move(key));
  return Status::Ok();
}

void KeySet::Add(const SigningKey& key) {
  // Our own export always parses back.
  const Status s = AddJwk(key.PublicJwk());
  assert(s.ok());
  (void)s;
}

bool KeySet::Contains(std::string_view kid) const {
  return impl_ && impl_->keys.find(kid) != impl_->keys.end();
}

std::size_t KeySet::size() const { return impl_ ? impl_->keys.size() : 0; }

std::string KeySet::ToJwks() const {
  std::string out = "{\"keys\":[";
  bool first = true;
  if (impl_) {
    for (const auto& [kid, key] : impl_->keys) {
      if (!first) out += ',';
      first = false;
      out += key.jwk;
    }
  }
  out += "]}";
  return out;
}

// --- validation -------------------------------------------------------------------

namespace {

Result<std::optional<std::string>> OptionalString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return std::optional<std::string>{};
  if (!v->is_string()) return Reject("malformed " + std::string(key));
  return std::optional<std::string>(std::string(v->as_string()));
}

}  // namespace

Result<Claims> Validate(std::string_view token, const KeySet& keys,
                        const ValidationOptions& options) {
  if (token.size() > options.max_token_bytes) return Reject("token too large");
  const auto seg = Split(token);
  if (!seg) return Reject("malformed token");

  // Header: everything that selects the key and algorithm is checked before
  // the signature; nothing of the payload is trusted before it.
  auto header = DecodeObject(seg->header, "header");
  if (!header) return header.error();
  if (header->contains("crit")) return Reject("unsupported critical header");
  const json::string* alg_name = StringField(*header, "alg");
  if (!alg_name) return Reject("malformed header");
  const auto alg = ParseAlgorithm(*alg_name);
  if (!alg) return Reject("algorithm not allowed");
  bool allowed = false;
  for (const Algorithm a : options.allowed) allowed = allowed || a == *alg;
  if (!allowed) return Reject("algorithm not allowed");
  if (const json::value* typ = header->if_contains("typ"); typ && !typ->is_string())
    return Reject("malformed header");
  const json::value* kid = header->if_contains("kid");
  if (!kid) return Reject("unknown kid");
  if (!kid->is_string()) return Reject("malformed header");
  const auto found = keys.impl_ ? keys.impl_->keys.find(std::string_view(kid->as_string()))
                                : decltype(keys.impl_->keys.end()){};
  if (!keys.impl_ || found == keys.impl_->keys.end()) return Reject("unknown kid");
  const PublicKey& key = found->second;
  if (key.alg != *alg) return Reject("algorithm does not match the key");

  const auto sig = B64UrlDecode(seg->signature);
  if (!sig) return Reject("malformed signature encoding");
  if (!VerifyRaw(*key.ops, seg->signing_input, *sig)) return Reject("bad signature");

  auto payload = DecodeObject(seg->payload, "payload");
  if (!payload) return payload.error();
  const json::object& p = *payload;
  Claims c;

  const json::value* exp = p.if_contains("exp");
  if (!exp) return Reject("missing exp");
  const auto exp_v = NumericDate(*exp);
  if (!exp_v) return Reject("malformed exp");
  c.exp = *exp_v;
  if (options.now >= c.exp + options.leeway_seconds) return Reject("expired");
  if (const json::value* nbf = p.if_contains("nbf")) {
    const auto v = NumericDate(*nbf);
    if (!v) return Reject("malformed nbf");
    c.nbf = *v;
    if (c.nbf > options.now + options.leeway_seconds) return Reject("not yet valid");
  }
  if (const json::value* iat = p.if_contains("iat")) {
    const auto v = NumericDate(*iat);
    if (!v) return Reject("malformed iat");
    c.iat = *v;
    if (c.iat > options.now + options.leeway_seconds) return Reject("issued in the future");
  }

  auto iss = OptionalString(p, "iss");
  if (!iss) return iss.error();
  if (iss->value_or("") != options.issuer) return Reject("wrong issuer");
  c.iss = iss->value_or("");

  if (const json::value* aud = p.if_contains("aud")) {
    if (aud->is_string()) {
      c.aud.emplace_back(aud->as_string());
    } else if (aud->is_array()) {
      for (const json::value& a : aud->as_array()) {
        if (!a.is_string()) return Reject("malformed aud");
        c.aud.emplace_back(a.as_string());
      }
    } else {
      return Reject("malformed aud");
    }
  }
  if (!options.audience.empty()) {
    bool match = false;
    for (const auto& a : c.aud) match = match || a == options.audience;
    if (!match) return Reject("wrong audience");
  }

  const std::pair<const char*, std::string*> strings[] = {{"sub", &c.sub},
                                                          {"jti", &c.jti},
                                                          {"client_id", &c.client_id},
                                                          {"scope", &c.scope},
                                                          {"preferred_username", &c.username}};
  for (const auto& [name, out] : strings) {
    auto v = OptionalString(p, name);
    if (!v) return v.error();
    if (*v) *out = std::move(**v);
  }
  if (const json::value* roles = p.if_contains("roles")) {
    if (!roles->is_array()) return Reject("malformed roles");
    for (const json::value& r : roles->as_array()) {
      if (!r.is_string()) return Reject("malformed roles");
      c.roles.emplace_back(r.as_string());
    }
  }
  return c;
}

Result<std::string> PeekKid(std::string_view token) {
  const auto seg = Split(token);
  if (!seg) return Reject("malformed token");
  auto header = DecodeObject(seg->header, "header");
  if (!header) return header.error();
  const json::string* kid = StringField(*header, "kid");
  if (!kid) return Reject("malformed header");
  return std::string(*kid);
}

}  // namespace bulwark::jwt
