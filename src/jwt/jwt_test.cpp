#include "jwt/jwt.hpp"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <atomic>
#include <boost/json.hpp>
#include <string>
#include <thread>

namespace bulwark::jwt {
namespace {

constexpr int64_t kNow = 1'800'000'000;
const std::string kIssuer = "https://bulwark.test";

// --- an independent minimal JWS signer, to craft tokens Sign() never makes ----

std::string B64(std::string_view in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += a[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += a[(acc << (6 - bits)) & 63];
  return out;
}

EVP_PKEY* LoadPem(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return k;
}

// Signs `input` with the key's PEM: raw r||s for ES256 (from OpenSSL's DER).
std::string RawSign(const SigningKey& key, const std::string& input) {
  EVP_PKEY* pkey = LoadPem(key.PrivateKeyPem());
  EXPECT_NE(pkey, nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ec = key.algorithm() == Algorithm::kES256;
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, ec ? EVP_sha256() : nullptr, nullptr, pkey), 1);
  std::size_t len = 0;
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()),
            1);
  std::string sig(len, '\0');
  EXPECT_EQ(EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(input.data()), input.size()),
            1);
  sig.resize(len);
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  if (!ec) return sig;
  const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(s), reinterpret_cast<unsigned char*>(raw.data()), 32);
  BN_bn2binpad(ECDSA_SIG_get0_s(s), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  ECDSA_SIG_free(s);
  return raw;
}

std::string Craft(const SigningKey& key, const std::string& header, const std::string& payload) {
  const std::string input = B64(header) + "." + B64(payload);
  return input + "." + B64(RawSign(key, input));
}

std::string Header(const SigningKey& key) {
  return std::string(R"({"alg":")") + AlgorithmName(key.algorithm()) + R"(","typ":"JWT","kid":")" +
         key.kid() + R"("})";
}

std::string Payload(const std::string& extra = "") {
  return R"({"iss":")" + kIssuer + R"(","sub":"u1","aud":"api","exp":)" +
         std::to_string(kNow + 300) + R"(,"iat":)" + std::to_string(kNow) + extra + "}";
}

Claims SampleClaims() {
  Claims c;
  c.iss = kIssuer;
  c.sub = "user-1";
  c.aud = {"api"};
  c.exp = kNow + 300;
  c.iat = kNow;
  c.jti = "j-1";
  c.roles = {"admin", "user"};
  c.username = "alice";
  return c;
}

ValidationOptions Options() {
  ValidationOptions o;
  o.issuer = kIssuer;
  o.audience = "api";
  o.now = kNow;
  return o;
}

class JwtTest : public ::testing::TestWithParam<Algorithm> {
 protected:
  void SetUp() override {
    auto k = SigningKey::Generate(GetParam(), "k1");
    ASSERT_TRUE(k.ok());
    key_.emplace(std::move(k).value());
    keys_.Add(*key_);
  }
  const SigningKey& key() const { return *key_; }

  void ExpectRejected(const std::string& token, const std::string& reason,
                      const ValidationOptions& o = Options()) {
    const auto r = Validate(token, keys_, o);
    ASSERT_FALSE(r.ok()) << reason;
    EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
    EXPECT_EQ(r.error().message(), reason);
  }

  std::optional<SigningKey> key_;
  KeySet keys_;
};

INSTANTIATE_TEST_SUITE_P(Algorithms, JwtTest,
                         ::testing::Values(Algorithm::kES256, Algorithm::kEdDSA),
                         [](const auto& info) { return std::string(AlgorithmName(info.param)); });

TEST_P(JwtTest, SignAndValidateRoundTrip) {
  const auto token = key().Sign(SampleClaims());
  ASSERT_TRUE(token.ok());
  const auto c = Validate(*token, keys_, Options());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->iss, kIssuer);
  EXPECT_EQ(c->sub, "user-1");
  EXPECT_EQ(c->aud, std::vector<std::string>{"api"});
  EXPECT_EQ(c->exp, kNow + 300);
  EXPECT_EQ(c->iat, kNow);
  EXPECT_EQ(c->nbf, 0);
  EXPECT_EQ(c->jti, "j-1");
  EXPECT_EQ(c->roles, (std::vector<std::string>{"admin", "user"}));
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->client_id, "");
  EXPECT_EQ(PeekKid(*token).value(), "k1");
}

TEST_P(JwtTest, HeaderAndPayloadShape) {
  Claims c = SampleClaims();
  c.aud = {"api", "b"};
  c.client_id = "cli";
  c.scope = "read write";
  c.nbf = kNow - 1;
  const std::string token = key().Sign(c).value();
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  ASSERT_NE(dot2, std::string::npos);
  // Each segment is unpadded base64url.
  EXPECT_EQ(
      token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
      std::string::npos);
  // ES256 and EdDSA signatures are both 64 raw bytes: 86 characters.
  EXPECT_EQ(token.size() - dot2 - 1, 86u);
  const auto parsed = Validate(token, keys_, Options());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->aud, (std::vector<std::string>{"api", "b"}));
  EXPECT_EQ(parsed->client_id, "cli");
  EXPECT_EQ(parsed->scope, "read write");
  EXPECT_EQ(parsed->nbf, kNow - 1);
}

TEST_P(JwtTest, CraftedTokenWithTheSameRulesValidates) {
  // The crafting helper itself is sound (so the rejections below test one thing).
  const auto c = Validate(Craft(key(), Header(key()), Payload()), keys_, Options());
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->sub, "u1");
}

TEST_P(JwtTest, PemRoundTrip) {
  const std::string pem = key().PrivateKeyPem();
  EXPECT_NE(pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  const auto again = SigningKey::FromPrivateKeyPem(GetParam(), "k1", pem);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->PublicJwk(), key().PublicJwk());
  EXPECT_TRUE(Validate(again->Sign(SampleClaims()).value(), keys_, Options()).ok());
  // The other algorithm's loader refuses the key.
  const Algorithm other = GetParam() == Algorithm::kES256 ? Algorithm::kEdDSA : Algorithm::kES256;
  const auto wrong = SigningKey::FromPrivateKeyPem(other, "k1", pem);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(SigningKey::FromPrivateKeyPem(GetParam(), "k1", "garbage").ok());
  EXPECT_FALSE(SigningKey::FromPrivateKeyPem(GetParam(), "", pem).ok());
}

TEST_P(JwtTest, JwkShape) {
  const auto jwk = boost::json::parse(key().PublicJwk()).as_object();
  EXPECT_EQ(jwk.at("kid").as_string(), "k1");
  EXPECT_EQ(jwk.at("use").as_string(), "sig");
  EXPECT_EQ(jwk.at("alg").as_string(), AlgorithmName(GetParam()));
  EXPECT_FALSE(jwk.contains("d"));
  if (GetParam() == Algorithm::kES256) {
    EXPECT_EQ(jwk.at("kty").as_string(), "EC");
    EXPECT_EQ(jwk.at("crv").as_string(), "P-256");
    EXPECT_EQ(jwk.at("x").as_string().size(), 43u);
    EXPECT_EQ(jwk.at("y").as_string().size(), 43u);
  } else {
    EXPECT_EQ(jwk.at("kty").as_string(), "OKP");
    EXPECT_EQ(jwk.at("crv").as_string(), "Ed25519");
    EXPECT_EQ(jwk.at("x").as_string().size(), 43u);
    EXPECT_FALSE(jwk.contains("y"));
  }
}

TEST_P(JwtTest, JwksRoundTrip) {
  auto k2 = SigningKey::Generate(GetParam(), "k2").value();
  keys_.Add(k2);
  const auto set = KeySet::FromJwks(keys_.ToJwks());
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_EQ(set->size(), 2u);
  EXPECT_TRUE(set->Contains("k1"));
  EXPECT_TRUE(set->Contains("k2"));
  EXPECT_FALSE(set->Contains("k3"));
  EXPECT_TRUE(Validate(k2.Sign(SampleClaims()).value(), *set, Options()).ok());
  EXPECT_TRUE(Validate(key().Sign(SampleClaims()).value(), *set, Options()).ok());
}

TEST_P(JwtTest, RejectsBadSignature) {
  std::string token = key().Sign(SampleClaims()).value();
  // Flip a bit in the middle of the signature.
  const std::size_t i = token.size() - 20;
  token[i] = token[i] == 'A' ? 'B' : 'A';
  ExpectRejected(token, "bad signature");
  // A signature of another key with the same kid.
  auto impostor = SigningKey::Generate(GetParam(), "k1").value();
  ExpectRejected(impostor.Sign(SampleClaims()).value(), "bad signature");
  // A payload swapped under a valid signature.
  const std::string t2 = key().Sign(SampleClaims()).value();
  Claims other = SampleClaims();
  other.sub = "root";
  const std::string t3 = key().Sign(other).value();
  const auto d = [](const std::string& t, int n) {
    std::size_t p = 0;
    for (int k = 0; k < n; ++k) p = t.find('.', p) + 1;
    return p;
  };
  const std::string spliced =
      t2.substr(0, d(t2, 1)) + t3.substr(d(t3, 1), d(t3, 2) - d(t3, 1)) + t2.substr(d(t2, 2));
  ExpectRejected(spliced, "bad signature");
}

TEST_P(JwtTest, RejectsSignatureOfWrongLength) {
  const std::string input = B64(Header(key())) + "." + B64(Payload());
  ExpectRejected(input + "." + B64(RawSign(key(), input).substr(0, 63)), "bad signature");
  ExpectRejected(input + "." + B64(RawSign(key(), input) + "x"), "bad signature");
  if (GetParam() == Algorithm::kES256) {
    // OpenSSL's DER form is not a JWS signature.
    EVP_PKEY* pkey = LoadPem(key().PrivateKeyPem());
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ASSERT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey), 1);
    unsigned char der[80];
    std::size_t len = sizeof(der);
    ASSERT_EQ(EVP_DigestSign(ctx, der, &len, reinterpret_cast<const unsigned char*>(input.data()),
                             input.size()),
              1);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    ExpectRejected(input + "." + B64(std::string(reinterpret_cast<char*>(der), len)),
                   "bad signature");
    // r = s = 0.
    ExpectRejected(input + "." + B64(std::string(64, '\0')), "bad signature");
  }
}

TEST_P(JwtTest, RejectsAlgNone) {
  const std::string h = R"({"alg":"none","typ":"JWT","kid":"k1"})";
  ExpectRejected(B64(h) + "." + B64(Payload()) + ".", "malformed token");
  ExpectRejected(B64(h) + "." + B64(Payload()) + "." + B64("x"), "algorithm not allowed");
  ExpectRejected(Craft(key(), h, Payload()), "algorithm not allowed");
  ExpectRejected(Craft(key(), R"({"alg":"None","kid":"k1"})", Payload()), "algorithm not allowed");
}

TEST_P(JwtTest, RejectsHs256SignedWithThePublicKey) {
  // The classic confusion attack: HMAC keyed with the public key's JWK/PEM text.
  const std::string input = B64(R"({"alg":"HS256","typ":"JWT","kid":"k1"})") + "." + B64(Payload());
  for (const std::string& secret : {key().PublicJwk(), key().PrivateKeyPem()}) {
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    ExpectRejected(input + "." + B64(std::string(reinterpret_cast<char*>(mac), len)),
                   "algorithm not allowed");
  }
}

TEST_P(JwtTest, RejectsAlgorithmThatDoesNotMatchTheKey) {
  const char* other = GetParam() == Algorithm::kES256 ? "EdDSA" : "ES256";
  ExpectRejected(Craft(key(), std::string(R"({"alg":")") + other + R"(","kid":"k1"})", Payload()),
                 "algorithm does not match the key");
  for (const char* alg : {"ES384", "ES512", "RS256", "PS256", "Ed25519", "es256", "EDDSA"}) {
    ExpectRejected(Craft(key(), std::string(R"({"alg":")") + alg + R"(","kid":"k1"})", Payload()),
                   "algorithm not allowed");
  }
}

TEST_P(JwtTest, RejectsAlgorithmNotInAllowedList) {
  ValidationOptions o = Options();
  o.allowed = {GetParam() == Algorithm::kES256 ? Algorithm::kEdDSA : Algorithm::kES256};
  ExpectRejected(key().Sign(SampleClaims()).value(), "algorithm not allowed", o);
}

TEST_P(JwtTest, RejectsUnknownOrMissingKid) {
  auto stranger = SigningKey::Generate(GetParam(), "k9").value();
  ExpectRejected(stranger.Sign(SampleClaims()).value(), "unknown kid");
  ExpectRejected(
      Craft(key(), std::string(R"({"alg":")") + AlgorithmName(GetParam()) + R"("})", Payload()),
      "unknown kid");
  ExpectRejected(
      Craft(key(), std::string(R"({"alg":")") + AlgorithmName(GetParam()) + R"(","kid":7})",
            Payload()),
      "malformed header");
  KeySet empty;
  const auto r = Validate(key().Sign(SampleClaims()).value(), empty, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "unknown kid");
}

TEST_P(JwtTest, RejectsMalformedBase64Url) {
  const std::string token = key().Sign(SampleClaims()).value();
  const std::size_t d1 = token.find('.');
  const std::size_t d2 = token.find('.', d1 + 1);
  const std::string h = token.substr(0, d1);
  const std::string p = token.substr(d1 + 1, d2 - d1 - 1);
  const std::string s = token.substr(d2 + 1);
  // Padding, standard-alphabet characters, whitespace, a lone trailing character.
  ExpectRejected(h + "=." + p + "." + s, "malformed header encoding");
  ExpectRejected(h + "." + p + "." + s + "==", "malformed signature encoding");
  ExpectRejected(h + "." + p + "=." + s, "bad signature");  // the signature covers the payload
  ExpectRejected(h + "." + p + "." + s.substr(0, 10) + "+" + s.substr(11),
                 "malformed signature encoding");
  ExpectRejected(h + "." + p + "." + s.substr(0, 10) + "/" + s.substr(11),
                 "malformed signature encoding");
  ExpectRejected(" " + token, "malformed header encoding");
  ExpectRejected(h + "." + p + "." + s + "AAA", "malformed signature encoding");  // 4n+1 chars
  ExpectRejected(h + "." + p + "." + s + "A", "bad signature");  // canonical, 65 bytes
  // Non-canonical trailing bits: 86 characters encode 64 bytes with 4 unused bits.
  std::string noncanon = s;
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const std::size_t last = alphabet.find(noncanon.back());
  noncanon.back() = alphabet[last ^ 1];
  ExpectRejected(h + "." + p + "." + noncanon, "malformed signature encoding");
  // A payload that is not base64url but carries a valid signature.
  const std::string input = h + ".e30*";
  ExpectRejected(input + "." + B64(RawSign(key(), input)), "malformed payload encoding");
}

TEST_P(JwtTest, RejectsMalformedJson) {
  const std::string hdr = Header(key());
  ExpectRejected(Craft(key(), "{\"alg\":", Payload()), "malformed header");
  ExpectRejected(Craft(key(), "[1,2]", Payload()), "malformed header");
  ExpectRejected(Craft(key(), "\"ES256\"", Payload()), "malformed header");
  ExpectRejected(Craft(key(), R"({"alg":1,"kid":"k1"})", Payload()), "malformed header");
  ExpectRejected(Craft(key(), R"({"kid":"k1"})", Payload()), "malformed header");
  ExpectRejected(Craft(key(), hdr, "{\"exp\":"), "malformed payload");
  ExpectRejected(Craft(key(), hdr, "[]"), "malformed payload");
  ExpectRejected(Craft(key(), hdr, "null"), "malformed payload");
  ExpectRejected(Craft(key(), hdr, "42"), "malformed payload");
  ExpectRejected(Craft(key(), hdr, Payload() + " x"), "malformed payload");
  ExpectRejected(Craft(key(), hdr,
                       R"({"iss":")" + kIssuer + R"(","aud":"api","sub":1,"exp":)" +
                           std::to_string(kNow + 9) + "}"),
                 "malformed sub");
  ExpectRejected(Craft(key(), hdr, Payload(R"(,"roles":"admin")")), "malformed roles");
  ExpectRejected(Craft(key(), hdr, Payload(R"(,"roles":[1])")), "malformed roles");
  ExpectRejected(Craft(key(), hdr, Payload(R"(,"jti":{})")), "malformed jti");
}

TEST_P(JwtTest, RejectsMissingOrExpiredExp) {
  const std::string hdr = Header(key());
  ExpectRejected(Craft(key(), hdr, R"({"iss":")" + kIssuer + R"(","aud":"api"})"), "missing exp");
  ExpectRejected(Craft(key(), hdr, R"({"iss":")" + kIssuer + R"(","aud":"api","exp":"soon"})"),
                 "malformed exp");
  Claims c = SampleClaims();
  c.exp = kNow;  // exp is the first instant it is no longer valid
  ExpectRejected(key().Sign(c).value(), "expired");
  c.exp = kNow - 100;
  ExpectRejected(key().Sign(c).value(), "expired");
  ValidationOptions o = Options();
  o.leeway_seconds = 101;
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, o).ok());
  c.exp = kNow + 1;
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, Options()).ok());
}

TEST_P(JwtTest, RejectsNotYetValid) {
  Claims c = SampleClaims();
  c.nbf = kNow + 10;
  ExpectRejected(key().Sign(c).value(), "not yet valid");
  ValidationOptions o = Options();
  o.leeway_seconds = 10;
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, o).ok());
  c.nbf = kNow;
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, Options()).ok());
}

TEST_P(JwtTest, RejectsIssuedInTheFuture) {
  Claims c = SampleClaims();
  c.iat = kNow + 60;
  ExpectRejected(key().Sign(c).value(), "issued in the future");
  ValidationOptions o = Options();
  o.leeway_seconds = 60;
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, o).ok());
}

TEST_P(JwtTest, RejectsWrongIssuer) {
  Claims c = SampleClaims();
  c.iss = "https://evil.test";
  ExpectRejected(key().Sign(c).value(), "wrong issuer");
  c.iss.clear();
  ExpectRejected(key().Sign(c).value(), "wrong issuer");
  ExpectRejected(Craft(key(), Header(key()),
                       R"({"iss":["x"],"aud":"api","exp":)" + std::to_string(kNow + 9) + "}"),
                 "malformed iss");
}

TEST_P(JwtTest, RejectsAudienceNotContained) {
  Claims c = SampleClaims();
  c.aud = {"other"};
  ExpectRejected(key().Sign(c).value(), "wrong audience");
  c.aud = {};
  ExpectRejected(key().Sign(c).value(), "wrong audience");
  c.aud = {"x", "api"};
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, Options()).ok());
  ValidationOptions any = Options();
  any.audience.clear();
  c.aud = {"other"};
  EXPECT_TRUE(Validate(key().Sign(c).value(), keys_, any).ok());
  ExpectRejected(Craft(key(), Header(key()), Payload().replace(Payload().find("\"api\""), 5, "7")),
                 "malformed aud");
  ExpectRejected(
      Craft(key(), Header(key()), Payload().replace(Payload().find("\"api\""), 5, "[7]")),
      "malformed aud");
}

TEST_P(JwtTest, RejectsOversizedTokens) {
  Claims c = SampleClaims();
  c.scope = std::string(9000, 's');
  const std::string big = key().Sign(c).value();
  ExpectRejected(big, "token too large");
  ValidationOptions o = Options();
  o.max_token_bytes = 20000;
  EXPECT_TRUE(Validate(big, keys_, o).ok());
  ExpectRejected(std::string(1 << 20, 'a'), "token too large");
}

TEST_P(JwtTest, RejectsWrongSegmentCount) {
  const std::string token = key().Sign(SampleClaims()).value();
  const std::size_t d2 = token.rfind('.');
  ExpectRejected("", "malformed token");
  ExpectRejected("abc", "malformed token");
  ExpectRejected(token.substr(0, d2), "malformed token");
  ExpectRejected(token + ".", "malformed token");
  ExpectRejected(token + ".abc", "malformed token");
  ExpectRejected("." + token, "malformed token");
  ExpectRejected("..", "malformed token");
  ExpectRejected(token.substr(0, d2) + "..", "malformed token");
}

TEST_P(JwtTest, RejectsCritHeader) {
  const std::string alg = AlgorithmName(GetParam());
  ExpectRejected(
      Craft(key(), R"({"alg":")" + alg + R"(","kid":"k1","crit":["exp"],"exp":1})", Payload()),
      "unsupported critical header");
  ExpectRejected(
      Craft(key(), R"({"alg":")" + alg + R"(","kid":"k1","b64":false,"crit":["b64"]})", Payload()),
      "unsupported critical header");
  ExpectRejected(Craft(key(), R"({"alg":")" + alg + R"(","kid":"k1","crit":[]})", Payload()),
                 "unsupported critical header");
}

TEST_P(JwtTest, PeekKidDoesNotValidate) {
  auto stranger = SigningKey::Generate(GetParam(), "rotated-2").value();
  EXPECT_EQ(PeekKid(stranger.Sign(SampleClaims()).value()).value(), "rotated-2");
  EXPECT_EQ(PeekKid("a.b").error().code(), ErrorCode::kUnauthorized);
  EXPECT_FALSE(PeekKid(B64("{}") + ".e30.x").ok());
  EXPECT_FALSE(PeekKid("!!.e30.x").ok());
}

TEST_P(JwtTest, ConcurrentSignAndValidateShareOneKey) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        const auto token = key().Sign(SampleClaims());
        if (!token.ok() || !Validate(*token, keys_, Options()).ok()) ++failures;
        // A bad signature must not poison a pooled context.
        if (token.ok()) {
          std::string bad = *token;
          bad[bad.size() - 20] = bad[bad.size() - 20] == 'A' ? 'B' : 'A';
          if (Validate(bad, keys_, Options()).ok()) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(JwtAlgorithm, Names) {
  EXPECT_STREQ(AlgorithmName(Algorithm::kES256), "ES256");
  EXPECT_STREQ(AlgorithmName(Algorithm::kEdDSA), "EdDSA");
  EXPECT_EQ(ParseAlgorithm("ES256"), Algorithm::kES256);
  EXPECT_EQ(ParseAlgorithm("EdDSA"), Algorithm::kEdDSA);
  EXPECT_FALSE(ParseAlgorithm("none").has_value());
  EXPECT_FALSE(ParseAlgorithm("HS256").has_value());
}

TEST(JwtKeySet, FromJwksSkipsForeignKeysAndRejectsMalformedOnes) {
  auto ec = SigningKey::Generate(Algorithm::kES256, "ec").value();
  auto ed = SigningKey::Generate(Algorithm::kEdDSA, "ed").value();
  const std::string rsa = R"({"kty":"RSA","kid":"r","n":"sXch","e":"AQAB","alg":"RS256"})";
  const std::string oct = R"({"kty":"oct","kid":"h","k":"c2VjcmV0"})";
  const std::string p384 = R"({"kty":"EC","crv":"P-384","kid":"p","x":"AA","y":"AA"})";
  const std::string x25519 = R"({"kty":"OKP","crv":"X25519","kid":"x","x":"AA"})";
  auto jwk = boost::json::parse(ec.PublicJwk()).as_object();
  jwk.erase("kid");
  const std::string no_kid = boost::json::serialize(jwk);
  jwk = boost::json::parse(ed.PublicJwk()).as_object();
  jwk["use"] = "enc";
  jwk["kid"] = "enc";
  const std::string enc = boost::json::serialize(jwk);
  const auto set =
      KeySet::FromJwks("{\"keys\":[" + ec.PublicJwk() + "," + ed.PublicJwk() + "," + rsa + "," +
                       oct + "," + p384 + "," + x25519 + "," + no_kid + "," + enc + "]}");
  ASSERT_TRUE(set.ok()) << set.error().message();
  EXPECT_EQ(set->size(), 2u);
  EXPECT_TRUE(set->Contains("ec"));
  EXPECT_TRUE(set->Contains("ed"));

  const auto bad = [](const std::string& jwks) {
    const auto r = KeySet::FromJwks(jwks);
    if (r.ok()) return std::string("accepted");
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    return r.error().message();
  };
  EXPECT_NE(bad("not json"), "accepted");
  EXPECT_NE(bad("[]"), "accepted");
  EXPECT_NE(bad("{}"), "accepted");
  EXPECT_NE(bad(R"({"keys":{}})"), "accepted");
  EXPECT_NE(bad(R"({"keys":[1]})"), "accepted");
  EXPECT_NE(bad("{\"keys\":[" + ec.PublicJwk() + "," + ec.PublicJwk() + "]}"), "accepted");

  // Malformed members of keys we would use.
  const auto mutate = [](const SigningKey& k, const char* field, boost::json::value v) {
    auto o = boost::json::parse(k.PublicJwk()).as_object();
    if (v.is_null()) {
      o.erase(field);
    } else {
      o[field] = std::move(v);
    }
    return "{\"keys\":[" + boost::json::serialize(o) + "]}";
  };
  const std::string x = boost::json::parse(ec.PublicJwk()).at("x").as_string().c_str();
  EXPECT_NE(bad(mutate(ec, "x", nullptr)), "accepted");
  EXPECT_NE(bad(mutate(ec, "y", nullptr)), "accepted");
  EXPECT_NE(bad(mutate(ec, "x", (x + "=").c_str())), "accepted");        // padding
  EXPECT_NE(bad(mutate(ec, "x", x.substr(0, 42).c_str())), "accepted");  // short
  EXPECT_NE(bad(mutate(ec, "alg", "EdDSA")), "accepted");
  EXPECT_NE(bad(mutate(ed, "alg", "ES256")), "accepted");
  EXPECT_NE(bad(mutate(ed, "x", "AAAA")), "accepted");
  EXPECT_NE(bad(mutate(ec, "kid", 5)), "accepted");
  // A point that is not on the curve: x of the key with y = x.
  EXPECT_NE(bad(mutate(ec, "y", x.c_str())), "accepted");
}

TEST(JwtKeySet, AddJwkAndEmptySet) {
  KeySet set;
  EXPECT_EQ(set.size(), 0u);
  EXPECT_EQ(set.ToJwks(), R"({"keys":[]})");
  EXPECT_FALSE(set.AddJwk("{").ok());
  EXPECT_FALSE(set.AddJwk(R"({"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"})").ok());
  auto k = SigningKey::Generate(Algorithm::kEdDSA, "e1").value();
  ASSERT_TRUE(set.AddJwk(k.PublicJwk()).ok());
  EXPECT_TRUE(set.Contains("e1"));
  const auto from_empty = KeySet::FromJwks(R"({"keys":[]})");
  ASSERT_TRUE(from_empty.ok());
  EXPECT_EQ(from_empty->size(), 0u);
  // Moved-from sets stay usable.
  KeySet moved = std::move(set);
  EXPECT_TRUE(moved.Contains("e1"));
}

TEST(JwtSigningKey, RejectsBadKid) {
  EXPECT_EQ(SigningKey::Generate(Algorithm::kES256, "").error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(SigningKey::Generate(Algorithm::kEdDSA, std::string(300, 'k')).ok());
}

TEST(JwtSigningKey, KidIsJsonEscaped) {
  auto k = SigningKey::Generate(Algorithm::kEdDSA, "a\"b\\c").value();
  KeySet set;
  set.Add(k);
  EXPECT_TRUE(set.Contains("a\"b\\c"));
  ValidationOptions o = Options();
  const auto c = Validate(k.Sign(SampleClaims()).value(), set, o);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(PeekKid(k.Sign(SampleClaims()).value()).value(), "a\"b\\c");
}

}  // namespace
}  // namespace bulwark::jwt
