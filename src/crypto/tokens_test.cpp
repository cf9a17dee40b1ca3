#include "crypto/tokens.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bulwark {
namespace {

bool IsBase64UrlChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

class TokensTest : public ::testing::Test {
 protected:
  void SetUp() override { InitCrypto(); }
};

TEST_F(TokensTest, InitCryptoIsIdempotentAndThreadSafe) {
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([] { InitCrypto(); });
  for (auto& t : threads) t.join();
  InitCrypto();
}

TEST_F(TokensTest, SessionTokenIs43Base64UrlCharacters) {
  for (int i = 0; i < 100; ++i) {
    const std::string token = NewSessionToken();
    ASSERT_EQ(token.size(), 43u);
    for (char c : token) ASSERT_TRUE(IsBase64UrlChar(c)) << token;
  }
}

TEST_F(TokensTest, SessionTokensAreUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewSessionToken());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST_F(TokensTest, UuidIsVersion4Variant1LowerCase) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string uuid = NewUuid();
    ASSERT_EQ(uuid.size(), 36u);
    for (std::size_t j = 0; j < uuid.size(); ++j) {
      if (j == 8 || j == 13 || j == 18 || j == 23) {
        ASSERT_EQ(uuid[j], '-') << uuid;
      } else {
        ASSERT_TRUE(IsLowerHex(uuid[j])) << uuid;
      }
    }
    EXPECT_EQ(uuid[14], '4') << uuid;
    EXPECT_NE(std::string("89ab").find(uuid[19]), std::string::npos) << uuid;
    seen.insert(uuid);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST_F(TokensTest, RandomHexHasTwoCharactersPerByte) {
  EXPECT_EQ(RandomHex(0), "");
  for (std::size_t n : {1u, 16u, 32u, 33u}) {
    const std::string hex = RandomHex(n);
    ASSERT_EQ(hex.size(), 2 * n);
    for (char c : hex) ASSERT_TRUE(IsLowerHex(c)) << hex;
  }
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(RandomHex(16));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST_F(TokensTest, Sha256KnownVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string_view("a\0b", 3)).size(), 64u);
  EXPECT_NE(Sha256Hex(std::string_view("a\0b", 3)), Sha256Hex("a"));
}

TEST_F(TokensTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_FALSE(ConstantTimeEquals("x", ""));
  EXPECT_FALSE(ConstantTimeEquals(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST_F(TokensTest, Base64UrlRfc4648Vectors) {
  // RFC 4648 §10, with the padding removed.
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST_F(TokensTest, Base64UrlUsesTheUrlSafeAlphabet) {
  // 0xfb 0xff 0xbf is "+/+/" in the standard alphabet.
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(Base64UrlEncode(std::string_view("\0\0\0", 3)), "AAAA");
}

TEST_F(TokensTest, Base64UrlDecodeRoundTrips) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00"}) {
    const auto d = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(d.has_value()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(Base64UrlDecode("Zm9vYmFy").value(), "foobar");
  EXPECT_EQ(Base64UrlDecode("__-_").value(), "\xff\xff\xbf");
}

TEST_F(TokensTest, Base64UrlDecodeIsStrict) {
  EXPECT_FALSE(Base64UrlDecode("Zg==").has_value());    // padding
  EXPECT_FALSE(Base64UrlDecode("Zm9v+A").has_value());  // standard alphabet
  EXPECT_FALSE(Base64UrlDecode("Zm9v/A").has_value());
  EXPECT_FALSE(Base64UrlDecode("Zm9v YmFy").has_value());  // whitespace
  EXPECT_FALSE(Base64UrlDecode("Zm9vY").has_value());      // 4n+1 characters
  EXPECT_FALSE(Base64UrlDecode("Zh").has_value());  // non-zero unused bits ("Zg" is canonical)
  EXPECT_TRUE(Base64UrlDecode("Zg").has_value());
  EXPECT_FALSE(Base64UrlDecode(std::string_view("Zg\0", 3)).has_value());
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

TEST(Base64DecodeTest, DecodesStandardPaddedBase64Only) {
  EXPECT_EQ(Base64Decode("cmVwb3J0czpzM2NyZXQ="), std::optional<std::string>("reports:s3cret"));
  EXPECT_EQ(Base64Decode(""), std::optional<std::string>(""));
  EXPECT_EQ(Base64Decode("YQ=="), std::optional<std::string>("a"));
  EXPECT_EQ(Base64Decode("YQ"), std::nullopt);        // padding required
  EXPECT_EQ(Base64Decode("Y-_="), std::nullopt);      // URL-safe alphabet is not this one
  EXPECT_EQ(Base64Decode("YQ==junk"), std::nullopt);  // trailing data
}

}  // namespace
}  // namespace bulwark
