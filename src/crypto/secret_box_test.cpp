#include "crypto/secret_box.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "crypto/tokens.hpp"

namespace bulwark {
namespace {

const std::string kHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

std::string Raw32() {
  std::string s;
  for (int i = 0; i < 32; ++i) s += static_cast<char>(i);
  return s;
}

TEST(MasterKey, ParsesHexBase64AndBase64Url) {
  const auto expect = [](const std::string& text) {
    const auto k = MasterKey::Parse(text);
    ASSERT_TRUE(k.ok()) << text << ": " << k.error().message();
    for (std::size_t i = 0; i < 32; ++i) ASSERT_EQ(k->bytes[i], i) << text;
  };
  expect(kHex);
  std::string upper = kHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  expect(upper);
  expect("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");  // base64
  expect("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");   // base64, no padding
  expect(Base64UrlEncode(Raw32()));                        // base64url
  expect("  " + kHex + "\n");                              // a file's trailing newline
  // Characters that differ between the two alphabets.
  const auto std64 = MasterKey::Parse("+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/8=");
  const auto url64 = MasterKey::Parse("-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8");
  ASSERT_TRUE(std64.ok());
  ASSERT_TRUE(url64.ok());
  EXPECT_EQ(std64->bytes, url64->bytes);
}

TEST(MasterKey, RejectsOtherLengthsAndGarbageWithoutQuotingIt) {
  for (const std::string& bad :
       {std::string(), std::string("secret-password"), kHex.substr(0, 62), kHex + "00",
        "zz" + kHex.substr(2), Base64UrlEncode(std::string(31, 'a')),
        Base64UrlEncode(std::string(33, 'a')),
        std::string("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==="),
        std::string("AAECAwQFBgcI CQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")}) {
    const auto k = MasterKey::Parse(bad);
    ASSERT_FALSE(k.ok()) << bad;
    EXPECT_EQ(k.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(k.error().message().find('\n'), std::string::npos);
    EXPECT_NE(k.error().message().find("BULWARK_MASTER_KEY"), std::string::npos);
    if (!bad.empty()) {
      EXPECT_EQ(k.error().message().find(bad), std::string::npos);
    }
  }
}

TEST(SecretBox, SealOpenRoundTrip) {
  const MasterKey key = MasterKey::Generate();
  for (const std::string& plain : {std::string(), std::string("x"), std::string(5000, 'k'),
                                   std::string("-----BEGIN PRIVATE KEY-----\n\0\xff", 30)}) {
    const auto sealed = Seal(key, plain, "signing-key:k1");
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(sealed->rfind("v1:", 0), 0u);
    EXPECT_EQ(sealed->find("PRIVATE"), std::string::npos);
    const auto opened = Open(key, *sealed, "signing-key:k1");
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    EXPECT_EQ(*opened, plain);
  }
}

TEST(SecretBox, NoncesAreRandom) {
  const MasterKey key = MasterKey::Generate();
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) seen.insert(Seal(key, "same", "ad").value());
  EXPECT_EQ(seen.size(), 50u);
}

TEST(SecretBox, RejectsTampering) {
  const MasterKey key = MasterKey::Generate();
  const std::string sealed = Seal(key, "the private key", "ad").value();
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  // Every character of the body (nonce, ciphertext and tag) is covered.
  for (std::size_t i = 3; i < sealed.size(); ++i) {
    std::string t = sealed;
    t[i] = alphabet[(alphabet.find(t[i]) + 1) % 64];
    const auto r = Open(key, t, "ad");
    ASSERT_FALSE(r.ok()) << i;
    // The last character also carries unused bits: flipping them breaks base64url.
    EXPECT_TRUE(r.error().code() == ErrorCode::kUnauthorized ||
                r.error().code() == ErrorCode::kInvalidArgument)
        << i;
    if (i + 1 < sealed.size()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized) << i;
    }
  }
  // Truncated, extended, other formats.
  EXPECT_FALSE(Open(key, sealed.substr(0, sealed.size() - 4), "ad").ok());
  EXPECT_FALSE(Open(key, sealed + "AAAA", "ad").ok());
  EXPECT_EQ(Open(key, "v1:" + Base64UrlEncode(std::string(39, 'a')), "ad").error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Open(key, "v2:" + sealed.substr(3), "ad").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Open(key, sealed.substr(3), "ad").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Open(key, "v1:abc=", "ad").error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Open(key, "", "ad").error().code(), ErrorCode::kInvalidArgument);
}

TEST(SecretBox, RejectsWrongKey) {
  const MasterKey key = MasterKey::Generate();
  MasterKey other = key;
  other.bytes[31] ^= 1;
  const auto r = Open(other, Seal(key, "secret", "ad").value(), "ad");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(r.error().message().find("secret"), std::string::npos);
}

TEST(SecretBox, RejectsWrongAssociatedData) {
  const MasterKey key = MasterKey::Generate();
  const std::string sealed = Seal(key, "secret", "signing-key:k1").value();
  EXPECT_EQ(Open(key, sealed, "signing-key:k2").error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(Open(key, sealed, "").error().code(), ErrorCode::kUnauthorized);
  EXPECT_TRUE(Open(key, sealed, "signing-key:k1").ok());
  const std::string no_ad = Seal(key, "secret", "").value();
  EXPECT_EQ(Open(key, no_ad, "x").error().code(), ErrorCode::kUnauthorized);
  EXPECT_EQ(Open(key, no_ad, "").value(), "secret");
}

}  // namespace
}  // namespace bulwark
