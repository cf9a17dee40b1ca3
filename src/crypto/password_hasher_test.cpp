#include "crypto/password_hasher.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <stdexcept>
#include <string>

#include "crypto/tokens.hpp"

namespace bulwark {
namespace {

// Small parameters keep the suite fast; one test runs the OWASP defaults.
constexpr Argon2Params kFast{.iterations = 1, .memory_kib = 8 * 1024};

TEST(PasswordHasherTest, HashAndVerify) {
  PasswordHasher hasher(kFast);
  Result<std::string> hash = hasher.Hash("correct horse battery staple");
  ASSERT_TRUE(hash.ok()) << hash.error().message();
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=8192,t=1,p=1$")) << *hash;
  EXPECT_TRUE(hasher.Verify(*hash, "correct horse battery staple"));
  EXPECT_FALSE(hasher.Verify(*hash, "correct horse battery stapler"));
  EXPECT_FALSE(hasher.Verify(*hash, ""));
}

TEST(PasswordHasherTest, EmptyAndBinaryPasswords) {
  PasswordHasher hasher(kFast);
  Result<std::string> empty = hasher.Hash("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(hasher.Verify(*empty, ""));
  EXPECT_FALSE(hasher.Verify(*empty, " "));

  // Passwords are bytes, not C strings: a NUL inside must count.
  const std::string with_nul("ab\0cd", 5);
  Result<std::string> hash = hasher.Hash(with_nul);
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(hasher.Verify(*hash, with_nul));
  EXPECT_FALSE(hasher.Verify(*hash, "ab"));
}

TEST(PasswordHasherTest, SamePasswordHashesDifferently) {
  PasswordHasher hasher(kFast);
  Result<std::string> a = hasher.Hash("hunter2");
  Result<std::string> b = hasher.Hash("hunter2");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(hasher.Verify(*a, "hunter2"));
  EXPECT_TRUE(hasher.Verify(*b, "hunter2"));
}

TEST(PasswordHasherTest, MalformedHashesNeverVerify) {
  PasswordHasher hasher(kFast);
  Result<std::string> hash = hasher.Hash("pw");
  ASSERT_TRUE(hash.ok());
  const std::string good = *hash;
  for (const std::string& bad : {
           std::string(),
           std::string("pw"),
           std::string("$argon2id$"),
           std::string("$argon2id$v=19$m=8192,t=1,p=1$"),
           good.substr(0, good.size() - 5),
           good + "x",
           good.substr(0, 10) + '\0' + good.substr(10),
           std::string(500, 'a'),
           std::string("$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"),
       }) {
    EXPECT_FALSE(hasher.Verify(bad, "pw")) << bad;
  }
}

TEST(PasswordHasherTest, NonArgon2idHashesNeedRehash) {
  PasswordHasher hasher(kFast);
  for (const std::string& other : {
           std::string(),
           std::string("pw"),
           std::string("$argon2id$"),
           std::string("$argon2i$v=19$m=8192,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
           std::string("$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"),
           std::string(500, 'a'),
       }) {
    EXPECT_TRUE(hasher.NeedsRehash(other)) << other;
  }
}

TEST(PasswordHasherTest, NeedsRehashFollowsTheParameters) {
  PasswordHasher fast(kFast);
  Result<std::string> hash = fast.Hash("pw");
  ASSERT_TRUE(hash.ok());
  EXPECT_FALSE(fast.NeedsRehash(*hash));

  PasswordHasher more_iterations({.iterations = 2, .memory_kib = 8 * 1024});
  EXPECT_TRUE(more_iterations.NeedsRehash(*hash));
  EXPECT_TRUE(more_iterations.Verify(*hash, "pw"));  // old hashes still verify

  PasswordHasher more_memory({.iterations = 1, .memory_kib = 16 * 1024});
  EXPECT_TRUE(more_memory.NeedsRehash(*hash));
}

TEST(PasswordHasherTest, VerifyDummyDoesNotCrash) {
  PasswordHasher hasher(kFast);
  hasher.VerifyDummy("anything");
  hasher.VerifyDummy("");
}

// The dummy is not hashed at start-up but built: it must still be an Argon2id
// string libsodium parses, at exactly the configured parameters (the work of
// a verify depends on them alone), shaped like a real hash, matching nothing.
TEST(PasswordHasherTest, TheDummyIsAWellFormedArgon2idStringAtTheCurrentParameters) {
  for (const Argon2Params& params : {kFast, Argon2Params{}}) {
    PasswordHasher hasher(params);
    const std::string& dummy = hasher.dummy_hash();
    // 0: parses and has these parameters (-1 would be malformed, 1 other parameters).
    EXPECT_EQ(crypto_pwhash_str_needs_rehash(dummy.c_str(), params.iterations,
                                             static_cast<size_t>(params.memory_kib) * 1024),
              0)
        << dummy;
    EXPECT_FALSE(hasher.NeedsRehash(dummy));
    Result<std::string> real = hasher.Hash("a real password");
    ASSERT_TRUE(real.ok());
    EXPECT_EQ(dummy.size(), real->size()) << dummy << " vs " << *real;
    EXPECT_EQ(dummy.substr(0, dummy.rfind('$', dummy.rfind('$') - 1)),
              real->substr(0, real->rfind('$', real->rfind('$') - 1)));
    EXPECT_FALSE(hasher.Verify(dummy, ""));
    EXPECT_FALSE(hasher.Verify(dummy, "a real password"));
    EXPECT_NE(PasswordHasher(params).dummy_hash(), dummy) << "salt and hash must be random";
  }
}

TEST(PasswordHasherTest, OwaspDefaults) {
  const Argon2Params defaults;
  EXPECT_EQ(defaults.iterations, 2u);
  EXPECT_EQ(defaults.memory_kib, 19u * 1024);
  PasswordHasher hasher(defaults);
  Result<std::string> hash = hasher.Hash("pw");
  ASSERT_TRUE(hash.ok());
  EXPECT_TRUE(hash->starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) << *hash;
  EXPECT_TRUE(hasher.Verify(*hash, "pw"));
  EXPECT_FALSE(hasher.NeedsRehash(*hash));
}

TEST(PasswordHasherTest, ValidateArgon2Params) {
  EXPECT_TRUE(ValidateArgon2Params(Argon2Params{}).ok());
  EXPECT_TRUE(ValidateArgon2Params({.iterations = 1, .memory_kib = 8}).ok());
  EXPECT_TRUE(ValidateArgon2Params({.iterations = 1, .memory_kib = 4 * 1024 * 1024}).ok());

  Status s = ValidateArgon2Params({.iterations = 0, .memory_kib = 8192});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().message(), "argon2 iterations must be at least 1, got 0");

  s = ValidateArgon2Params({.iterations = 1, .memory_kib = 7});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message(), "argon2 memory_kib must be between 8 and 4194304, got 7");

  s = ValidateArgon2Params({.iterations = 1, .memory_kib = 4 * 1024 * 1024 + 1});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message().find("4194304"), std::string::npos);
}

TEST(PasswordHasherTest, ConstructorRejectsInvalidParameters) {
  EXPECT_THROW(PasswordHasher({.iterations = 0, .memory_kib = 8192}), std::invalid_argument);
  EXPECT_THROW(PasswordHasher({.iterations = 1, .memory_kib = 1}), std::invalid_argument);
}

}  // namespace
}  // namespace bulwark
