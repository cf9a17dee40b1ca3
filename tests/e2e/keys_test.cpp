// Access tokens and signing keys against the real binary: login returns a JWT
// that validates against the served JWKS, verify accepts it, logout revokes
// it, and a key rotation on two replicas sharing one SQLite directory fails
// not one verification (docs/keys.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "tests/e2e/bulwark_server.hpp"

namespace bulwark::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

json::object Json(const std::string& body) { return json::parse(body).as_object(); }
std::pair<std::string, std::string> Bearer(const std::string& token) {
  return {"Authorization", "Bearer " + token};
}

// Settings that make a rotation complete in about two seconds.
std::map<std::string, std::string> FastKeys() {
  return {{"BULWARK_JWKS_MAX_AGE", "1"},
          {"BULWARK_KEY_REFRESH_INTERVAL", "1"},
          {"BULWARK_ISSUER", "https://auth.e2e.test"}};
}

std::string Base64UrlDecode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    std::size_t v = kAlphabet.find(c);
    if (v == std::string::npos) return "";
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

json::object JwtPart(const std::string& token, int index) {
  std::size_t first = token.find('.');
  std::size_t second = token.find('.', first + 1);
  std::string part =
      index == 0 ? token.substr(0, first) : token.substr(first + 1, second - first - 1);
  return Json(Base64UrlDecode(part));
}

std::string Kid(const std::string& token) {
  return std::string(JwtPart(token, 0).at("kid").as_string());
}

std::set<std::string> JwksKids(int port) {
  auto r = HttpRequest(port, "GET", "/.well-known/jwks.json");
  std::set<std::string> kids;
  if (r.status != 200) return kids;
  const json::object jwks = Json(r.body);
  for (const auto& k : jwks.at("keys").as_array()) {
    kids.insert(std::string(k.as_object().at("kid").as_string()));
  }
  return kids;
}

// An independent JOSE check: Node's crypto verifies the signature with the
// JWK from the served JWKS. Empty when node is not installed.
std::string NodePath() {
  for (const char* p : {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

constexpr char kNodeVerify[] = R"js(
const c = require('crypto');
const t = process.env.TOKEN.split('.');
const h = JSON.parse(Buffer.from(t[0], 'base64url'));
const k = JSON.parse(process.env.JWKS).keys.find((k) => k.kid === h.kid);
if (!k) process.exit(3);
const key = c.createPublicKey({key: k, format: 'jwk'});
const data = Buffer.from(t[0] + '.' + t[1]);
const sig = Buffer.from(t[2], 'base64url');
const ok = h.alg === 'ES256'
    ? c.verify('sha256', data, {key, dsaEncoding: 'ieee-p1363'}, sig)
    : c.verify(null, data, key, sig);
process.exit(ok ? 0 : 1);
)js";

class KeysE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(AddUser(dir_.path(), "admin", "admin-password", dir_.File("cli.log"), "admin"));
    ASSERT_TRUE(AddUser(dir_.path(), "bob", "bob-password", dir_.File("cli.log")));
  }

  static json::object Login(int port, const std::string& user, const std::string& password) {
    auto r = HttpRequest(port, "POST", "/v1/auth/login", LoginBody(user, password));
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return {};
    return Json(r.body);
  }
  static std::string AccessToken(int port, const std::string& user = "bob",
                                 const std::string& password = "bob-password") {
    json::object body = Login(port, user, password);
    if (!body.contains("access_token")) return "";
    return std::string(body.at("access_token").as_string());
  }

  TempDir dir_;
};

TEST_F(KeysE2E, LoginReturnsAJwtThatValidatesAgainstTheServedJwks) {
  BulwarkServer server(dir_.path(), dir_.File("server.log"), FastKeys());
  ASSERT_TRUE(server.WaitReady()) << server.process().ReadLog();
  json::object login = Login(server.port(), "bob", "bob-password");
  ASSERT_TRUE(login.contains("access_token"));
  EXPECT_TRUE(login.contains("session_token"));  // the session fields stay
  EXPECT_EQ(login.at("access_token_expires_in").as_int64(), 300);
  const std::string token(login.at("access_token").as_string());

  json::object header = JwtPart(token, 0);
  json::object claims = JwtPart(token, 1);
  EXPECT_EQ(header.at("alg").as_string(), "ES256");
  EXPECT_EQ(claims.at("iss").as_string(), "https://auth.e2e.test");
  EXPECT_EQ(claims.at("aud").as_string(), "https://auth.e2e.test");
  EXPECT_EQ(claims.at("sub").as_string(), login.at("user").as_object().at("id").as_string());
  EXPECT_EQ(claims.at("preferred_username").as_string(), "bob");
  EXPECT_EQ(claims.at("exp").as_int64() - claims.at("iat").as_int64(), 300);
  EXPECT_FALSE(claims.at("jti").as_string().empty());
  EXPECT_TRUE(claims.at("roles").is_array());

  auto jwks = HttpRequest(server.port(), "GET", "/.well-known/jwks.json");
  ASSERT_EQ(jwks.status, 200);
  EXPECT_EQ(jwks.Header("Cache-Control"), "public, max-age=1");
  EXPECT_EQ(jwks.body.find("\"d\""), std::string::npos);  // no private key
  EXPECT_EQ(JwksKids(server.port()).count(Kid(token)), 1u);
  const std::string node = NodePath();
  if (!node.empty()) {
    EXPECT_EQ(RunCommand({node, "-e", kNodeVerify}, {{"TOKEN", token}, {"JWKS", jwks.body}},
                         dir_.File("node.log")),
              0)
        << "node could not verify the token with the served JWKS";
  }

  auto discovery = HttpRequest(server.port(), "GET", "/.well-known/openid-configuration");
  ASSERT_EQ(discovery.status, 200);
  json::object d = Json(discovery.body);
  EXPECT_EQ(d.at("issuer").as_string(), "https://auth.e2e.test");
  EXPECT_EQ(d.at("jwks_uri").as_string(), "https://auth.e2e.test/.well-known/jwks.json");
  EXPECT_EQ(d.at("token_endpoint").as_string(), "https://auth.e2e.test/oauth2/token");
  EXPECT_EQ(d.at("introspection_endpoint").as_string(), "https://auth.e2e.test/oauth2/introspect");
  EXPECT_EQ(d.at("revocation_endpoint").as_string(), "https://auth.e2e.test/oauth2/revoke");

  auto verify = HttpRequest(server.port(), "GET", "/v1/auth/verify", "", {Bearer(token)});
  ASSERT_EQ(verify.status, 200) << verify.body;
  EXPECT_EQ(verify.Header("X-Auth-User"), "bob");
  EXPECT_EQ(verify.Header("X-Auth-User-Id"), std::string(claims.at("sub").as_string()));
  EXPECT_EQ(verify.Header("X-Auth-Roles"), "");
}

TEST_F(KeysE2E, TamperedAndRevokedJwtsAreRefused) {
  BulwarkServer server(dir_.path(), dir_.File("server.log"), FastKeys());
  ASSERT_TRUE(server.WaitReady()) << server.process().ReadLog();
  const std::string token = AccessToken(server.port());
  ASSERT_FALSE(token.empty());

  // Another user's claims under bob's signature.
  std::string tampered = token;
  std::size_t dot = tampered.find('.');
  tampered[dot + 5] = tampered[dot + 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(HttpRequest(server.port(), "GET", "/v1/auth/verify", "", {Bearer(tampered)}).status,
            401);
  std::string bad_signature = token;
  bad_signature[bad_signature.size() - 3] =
      bad_signature[bad_signature.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(
      HttpRequest(server.port(), "GET", "/v1/auth/verify", "", {Bearer(bad_signature)}).status,
      401);
  EXPECT_EQ(HttpRequest(server.port(), "GET", "/v1/auth/verify", "", {Bearer("a.b.c")}).status,
            401);

  // Verified (and cached), then revoked by logout on a second replica.
  ASSERT_EQ(HttpRequest(server.port(), "GET", "/v1/auth/verify", "", {Bearer(token)}).status, 200);
  BulwarkServer second(dir_.path(), dir_.File("server2.log"), FastKeys());
  ASSERT_TRUE(second.WaitReady()) << second.process().ReadLog();
  EXPECT_EQ(HttpRequest(second.port(), "POST", "/v1/auth/logout", "", {Bearer(token)}).status, 204);
  // At once on the replica that revoked it; on the other one as soon as its
  // cached "not revoked" answer is older than BULWARK_REVOCATION_RECHECK (1 s).
  EXPECT_EQ(HttpRequest(second.port(), "GET", "/v1/auth/verify", "", {Bearer(token)}).status, 401);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    status = HttpRequest(server.port(), "GET", "/v1/auth/verify", "", {Bearer(token)}).status;
    if (status != 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 401);
  // Another token of the same user is unaffected.
  const std::string other = AccessToken(server.port());
  EXPECT_EQ(HttpRequest(second.port(), "GET", "/v1/auth/verify", "", {Bearer(other)}).status, 200);
}

TEST_F(KeysE2E, AdminKeyListingAndRotateEndpoint) {
  BulwarkServer server(dir_.path(), dir_.File("server.log"), FastKeys());
  ASSERT_TRUE(server.WaitReady()) << server.process().ReadLog();
  const std::string admin = AccessToken(server.port(), "admin", "admin-password");
  const std::string bob = AccessToken(server.port());
  EXPECT_EQ(HttpRequest(server.port(), "GET", "/v1/admin/keys", "", {Bearer(bob)}).status, 403);
  EXPECT_EQ(HttpRequest(server.port(), "GET", "/v1/admin/keys").status, 401);
  auto listed = HttpRequest(server.port(), "GET", "/v1/admin/keys", "", {Bearer(admin)});
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.body.find("PRIVATE"), std::string::npos);
  EXPECT_EQ(listed.body.find("private"), std::string::npos);
  ASSERT_EQ(Json(listed.body).at("keys").as_array().size(), 1u);

  auto rotated = HttpRequest(server.port(), "POST", "/v1/admin/keys/rotate", "", {Bearer(admin)});
  ASSERT_EQ(rotated.status, 202) << rotated.body;
  json::object next = Json(rotated.body).at("next").as_object();
  EXPECT_EQ(next.at("state").as_string(), "next");
  EXPECT_EQ(JwksKids(server.port()).count(std::string(next.at("kid").as_string())), 1u);
}

// Two replicas on one SQLite directory; verifications run without pause
// against both while `bulwark keys rotate` runs and the new key takes over.
TEST_F(KeysE2E, RotationUnderLoadFailsNoVerification) {
  BulwarkServer a(dir_.path(), dir_.File("a.log"), FastKeys());
  BulwarkServer b(dir_.path(), dir_.File("b.log"), FastKeys());
  ASSERT_TRUE(a.WaitReady()) << a.process().ReadLog();
  ASSERT_TRUE(b.WaitReady()) << b.process().ReadLog();

  const std::string old_token = AccessToken(a.port());
  ASSERT_FALSE(old_token.empty());
  const std::string old_kid = Kid(old_token);
  EXPECT_EQ(Kid(AccessToken(b.port())), old_kid);  // one active key for both

  std::mutex mu;
  std::vector<std::string> tokens{old_token};  // GUARDED_BY(mu)
  std::atomic<bool> stop{false};
  std::atomic<int> verifications{0};
  std::atomic<int> failures{0};
  std::string first_failure;  // GUARDED_BY(mu)
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      const auto deadline = steady_clock::now() + seconds(60);
      for (int i = 0; !stop && steady_clock::now() < deadline; ++i) {
        std::string token;
        {
          std::lock_guard lock(mu);
          token = tokens[static_cast<std::size_t>(i + t) % tokens.size()];
        }
        const int port = (i + t) % 2 == 0 ? a.port() : b.port();
        auto r = HttpRequest(port, "GET", "/v1/auth/verify", "", {Bearer(token)});
        ++verifications;
        if (r.status != 200) {
          ++failures;
          std::lock_guard lock(mu);
          if (first_failure.empty()) {
            first_failure = std::to_string(r.status) + " " + r.body + " kid " + Kid(token);
          }
        }
      }
    });
  }

  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_EQ(RunBulwark(dir_.path(), {"keys", "rotate"}, dir_.File("rotate.log")), 0)
      << ReadFile(dir_.File("rotate.log"));
  // Published on both replicas within a refresh interval, before it signs.
  std::string new_kid;
  for (int i = 0; i < 50 && new_kid.empty(); ++i) {
    std::set<std::string> kids_a = JwksKids(a.port());
    std::set<std::string> kids_b = JwksKids(b.port());
    if (kids_a.size() == 2 && kids_b == kids_a) {
      for (const auto& k : kids_a) {
        if (k != old_kid) new_kid = k;
      }
    }
    if (new_kid.empty()) std::this_thread::sleep_for(milliseconds(100));
  }
  ASSERT_FALSE(new_kid.empty()) << "the next key never reached both JWKS";

  // Tokens minted on both replicas until the new key signs (bounded).
  std::set<std::string> minted_kids;
  for (int i = 0; i < 40; ++i) {
    for (int port : {a.port(), b.port()}) {
      std::string token = AccessToken(port);
      ASSERT_FALSE(token.empty());
      minted_kids.insert(Kid(token));
      std::lock_guard lock(mu);
      tokens.push_back(token);
    }
    if (minted_kids.count(new_kid) != 0) break;
    std::this_thread::sleep_for(milliseconds(250));
  }
  ASSERT_EQ(minted_kids.count(new_kid), 1u) << "the new key never started signing";
  // Both replicas sign with the new key once they refreshed.
  for (int i = 0; i < 20; ++i) {
    if (Kid(AccessToken(a.port())) == new_kid && Kid(AccessToken(b.port())) == new_kid) break;
    std::this_thread::sleep_for(milliseconds(250));
  }
  {
    std::lock_guard lock(mu);
    tokens.push_back(AccessToken(a.port()));
    tokens.push_back(AccessToken(b.port()));
  }
  std::this_thread::sleep_for(milliseconds(1500));
  stop = true;
  for (auto& t : load) t.join();

  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_GT(verifications.load(), 50);
  // The retired key stays published: old tokens still verify everywhere.
  std::set<std::string> kids = JwksKids(a.port());
  EXPECT_EQ(kids.count(old_kid), 1u);
  EXPECT_EQ(kids.count(new_kid), 1u);
  EXPECT_EQ(JwksKids(b.port()), kids);
  for (int port : {a.port(), b.port()}) {
    EXPECT_EQ(HttpRequest(port, "GET", "/v1/auth/verify", "", {Bearer(old_token)}).status, 200);
  }
  const std::string node = NodePath();
  if (!node.empty()) {
    auto jwks = HttpRequest(b.port(), "GET", "/.well-known/jwks.json");
    EXPECT_EQ(RunCommand({node, "-e", kNodeVerify}, {{"TOKEN", old_token}, {"JWKS", jwks.body}},
                         dir_.File("node.log")),
              0);
  }

  // `bulwark keys list` shows the retired and the active key, no private material.
  ASSERT_EQ(RunBulwark(dir_.path(), {"keys", "list"}, dir_.File("list.log")), 0);
  const std::string listing = ReadFile(dir_.File("list.log"));
  EXPECT_NE(listing.find(old_kid + "  ES256  retired"), std::string::npos) << listing;
  EXPECT_NE(listing.find(new_kid + "  ES256  active"), std::string::npos) << listing;
  EXPECT_EQ(listing.find("PRIVATE"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::testing
