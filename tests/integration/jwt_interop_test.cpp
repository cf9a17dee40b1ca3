// Interoperability of src/jwt with the npm `jose` package (tests/interop/):
// jose verifies tokens and a JWKS made by our C++ code (ES256 and EdDSA) and
// rejects tampered ones; our Validate accepts tokens minted by jose's SignJWT
// with its exported JWKS. The jose package is installed with `npm ci` from
// tests/interop/package-lock.json into <build>/interop-node (once; reused
// while the lock file is unchanged). Skipped only when node or npm is missing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "jwt/jwt.hpp"
#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark::jwt {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const std::string kIssuer = "https://bulwark.interop.test";
const std::string kAudience = "interop-api";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

// The absolute path of an executable on PATH, or "".
std::string Which(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const fs::path candidate = fs::path(dir) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

// tests/interop/ in the source tree (this file is tests/integration/...).
fs::path InteropSourceDir() { return fs::path(__FILE__).parent_path().parent_path() / "interop"; }

// A token with one character of its signature changed.
std::string FlipSignature(std::string token) {
  const std::size_t i = token.size() - 10;
  token[i] = token[i] == 'A' ? 'B' : 'A';
  return token;
}

std::string Segment(const std::string& token, int n) {
  std::size_t start = 0;
  for (int k = 0; k < n; ++k) start = token.find('.', start) + 1;
  const std::size_t end = token.find('.', start);
  return token.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

class JwtInteropTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    node_ = Which("node");
    npm_ = Which("npm");
    if (node_.empty() || npm_.empty()) {
      skip_reason_ = "node or npm is not installed (scripts/install-deps.sh test installs them)";
      return;
    }
    dir_ = new testing::TempDir();
    now_ = static_cast<int64_t>(std::time(nullptr));
    InstallJose();
    if (!setup_error_.empty()) return;
    MakeCppTokens();
    const fs::path log = fs::path(dir_->path()) / "node.log";
    node_status_ = testing::RunCommand({node_, (work_ / "interop.mjs").string(), dir_->path()}, {},
                                       log.string(), "", std::chrono::seconds(120));
    node_log_ = ReadFile(log);
  }

  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  // npm ci into <build>/interop-node unless the same lock file is installed there.
  static void InstallJose() {
    const fs::path src = InteropSourceDir();
    work_ = fs::path(BULWARK_BINARY).parent_path() / "interop-node";
    std::error_code ec;
    fs::create_directories(work_, ec);
    const std::string lock = ReadFile(src / "package-lock.json");
    if (lock.empty()) {
      setup_error_ = "missing " + (src / "package-lock.json").string();
      return;
    }
    // The script is always refreshed; the packages only when the lock changed.
    fs::copy_file(src / "interop.mjs", work_ / "interop.mjs", fs::copy_options::overwrite_existing,
                  ec);
    if (ec) {
      setup_error_ = "cannot copy interop.mjs: " + ec.message();
      return;
    }
    if (ReadFile(work_ / "package-lock.json") == lock &&
        fs::exists(work_ / "node_modules" / "jose" / "package.json"))
      return;
    WriteFile(work_ / "package.json", ReadFile(src / "package.json"));
    WriteFile(work_ / "package-lock.json", lock);
    const fs::path log = work_ / "npm-ci.log";
    std::error_code ignored;
    fs::remove(log, ignored);
    // `npm ci` runs in the current directory: run it through the shell with cd.
    const int rc = testing::RunCommand(
        {"/bin/sh", "-c", "cd \"$1\" && exec \"$2\" ci --no-audit --no-fund --prefer-offline", "sh",
         work_.string(), npm_},
        {}, log.string(), "", std::chrono::seconds(300));
    if (rc != 0) {
      // Forget the lock copy so the next run retries the install.
      fs::remove(work_ / "package-lock.json", ignored);
      setup_error_ = "npm ci failed (exit " + std::to_string(rc) + "):\n" + ReadFile(log);
    }
  }

  static Claims SampleClaims() {
    Claims c;
    c.iss = kIssuer;
    c.sub = "user-42";
    c.aud = {kAudience};
    c.iat = now_;
    c.exp = now_ + 300;
    c.jti = "jti-1";
    c.roles = {"admin", "user"};
    c.username = "alice";
    return c;
  }

  // cpp.json: our tokens, our JWKS, tampered tokens, the expected claims.
  static void MakeCppTokens() {
    auto es = SigningKey::Generate(Algorithm::kES256, "cpp-es256");
    auto ed = SigningKey::Generate(Algorithm::kEdDSA, "cpp-eddsa");
    if (!es.ok() || !ed.ok()) {
      setup_error_ = "key generation failed";
      return;
    }
    KeySet keys;
    keys.Add(*es);
    keys.Add(*ed);
    const Claims c = SampleClaims();
    const std::string es_token = es->Sign(c).value();
    const std::string ed_token = ed->Sign(c).value();
    Claims evil = c;
    evil.sub = "root";
    const std::string evil_token = es->Sign(evil).value();

    json::object doc;
    doc["issuer"] = kIssuer;
    doc["audience"] = kAudience;
    doc["now"] = now_;
    doc["jwks"] = json::parse(keys.ToJwks());
    doc["tokens"] = {{"ES256", es_token}, {"EdDSA", ed_token}};
    doc["kids"] = {{"ES256", "cpp-es256"}, {"EdDSA", "cpp-eddsa"}};
    json::array roles;
    for (const auto& r : c.roles) roles.emplace_back(r);
    doc["expected"] = {{"sub", c.sub}, {"exp", c.exp}, {"iat", c.iat}, {"roles", roles}};
    // The ES256 header over the EdDSA signature (kid of the EdDSA key) and a
    // payload swapped under a valid signature, besides flipped signatures.
    const std::string swapped =
        Segment(es_token, 0) + "." + Segment(evil_token, 1) + "." + Segment(es_token, 2);
    doc["tampered"] = {{"ES256 signature", FlipSignature(es_token)},
                       {"EdDSA signature", FlipSignature(ed_token)},
                       {"swapped payload", swapped}};
    WriteFile(fs::path(dir_->path()) / "cpp.json", json::serialize(doc));
  }

  static ValidationOptions Options() {
    ValidationOptions o;
    o.issuer = kIssuer;
    o.audience = kAudience;
    o.now = now_;
    return o;
  }

  static inline std::string node_, npm_, skip_reason_, setup_error_, node_log_;
  static inline fs::path work_;
  static inline testing::TempDir* dir_ = nullptr;
  static inline int64_t now_ = 0;
  static inline int node_status_ = -1;
};

TEST_F(JwtInteropTest, JoseVerifiesOurTokensAndRejectsTamperedOnes) {
  EXPECT_EQ(node_status_, 0) << node_log_;
  for (const char* line :
       {"ok   jose verifies the C++ ES256 token", "ok   jose verifies the C++ EdDSA token",
        "ok   jose rejects the tampered token (ES256 signature)",
        "ok   jose rejects the tampered token (EdDSA signature)",
        "ok   jose rejects the tampered token (swapped payload)"}) {
    EXPECT_NE(node_log_.find(line), std::string::npos) << line << "\n" << node_log_;
  }
  // interop.mjs starts a failed check's line with "FAIL".
  EXPECT_EQ(("\n" + node_log_).find("\nFAIL"), std::string::npos) << node_log_;
}

TEST_F(JwtInteropTest, OurValidateAcceptsJoseTokens) {
  ASSERT_EQ(node_status_, 0) << node_log_;
  const auto doc = json::parse(ReadFile(fs::path(dir_->path()) / "jose.json")).as_object();
  const auto keys = KeySet::FromJwks(json::serialize(doc.at("jwks")));
  ASSERT_TRUE(keys.ok()) << keys.error().message();
  EXPECT_EQ(keys->size(), 2u);
  for (const char* alg : {"ES256", "EdDSA"}) {
    SCOPED_TRACE(alg);
    const std::string token(doc.at("tokens").at(alg).as_string());
    const auto c = Validate(token, *keys, Options());
    ASSERT_TRUE(c.ok()) << c.error().message() << "\n" << token;
    EXPECT_EQ(c->iss, kIssuer);
    EXPECT_EQ(c->sub, "jose-user");
    EXPECT_EQ(c->aud, std::vector<std::string>{kAudience});
    EXPECT_EQ(c->exp, now_ + 300);
    EXPECT_EQ(c->iat, now_);
    EXPECT_EQ(c->nbf, now_ - 5);
    EXPECT_EQ(c->jti, std::string("jti-") + alg);
    EXPECT_EQ(c->roles, (std::vector<std::string>{"admin", "user"}));
    EXPECT_EQ(c->username, "alice");
    EXPECT_EQ(PeekKid(token).value(), alg == std::string("ES256") ? "jose-es256" : "jose-eddsa");

    // ... and rejects them tampered, or past their lifetime.
    const auto bad = Validate(FlipSignature(token), *keys, Options());
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().message(), "bad signature");
    ValidationOptions later = Options();
    later.now = now_ + 301;
    EXPECT_EQ(Validate(token, *keys, later).error().message(), "expired");
  }
}

TEST_F(JwtInteropTest, JoseJwkImportRoundTripsThroughOurExport) {
  ASSERT_EQ(node_status_, 0) << node_log_;
  // Our re-export of jose's JWKS is accepted by our own parser with the same kids.
  const auto doc = json::parse(ReadFile(fs::path(dir_->path()) / "jose.json")).as_object();
  const auto keys = KeySet::FromJwks(json::serialize(doc.at("jwks"))).value();
  const auto again = KeySet::FromJwks(keys.ToJwks());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->Contains("jose-es256"));
  EXPECT_TRUE(again->Contains("jose-eddsa"));
  for (const json::value& k : doc.at("jwks").at("keys").as_array()) {
    const auto& jwk = k.as_object();
    const auto ours = json::parse(again->ToJwks()).at("keys").as_array();
    bool same_x = false;
    for (const json::value& o : ours) same_x = same_x || o.at("x") == jwk.at("x");
    EXPECT_TRUE(same_x) << json::serialize(jwk);
  }
}

}  // namespace
}  // namespace bulwark::jwt
