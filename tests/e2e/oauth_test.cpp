// Refresh tokens and the OAuth 2.0 endpoints against the real binary:
// rotation and reuse detection, client_credentials with both client
// authentication methods, introspection, revocation, RFC 6749 errors.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/bulwark_server.hpp"

namespace bulwark::testing {
namespace {

namespace json = boost::json;

constexpr const char* kClientSecret = "reports-secret-0123456789abcdefghij";
// "<id>:<secret>" in base64, for client_secret_basic.
std::string BasicAuth(const std::string& id = "reports",
                      const std::string& secret = kClientSecret) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in = id + ":" + secret, out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return "Basic " + out;
}

json::object Json(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

std::string Str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}

const std::pair<std::string, std::string> kForm{"Content-Type",
                                                "application/x-www-form-urlencoded"};

class OAuthE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_TRUE(AddUser(dir_->path(), "olga", "olga-password", dir_->File("cli.log")));
    ASSERT_TRUE(AddUser(dir_->path(), "root", "root-password", dir_->File("cli.log"), "admin"));
    ASSERT_EQ(RunBulwark(dir_->path(),
                         {"client", "add", "--id", "reports", "--secret-stdin", "--grant",
                          "client_credentials", "--grant", "refresh_token", "--scope",
                          "reports:read", "--scope", "reports:write"},
                         dir_->File("cli.log"), std::string(kClientSecret) + "\n"),
              0);
    server_ = new BulwarkServer(dir_->path(), dir_->File("server.log"));
    ASSERT_TRUE(server_->WaitReady()) << server_->process().ReadLog();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  static int port() { return server_->port(); }

  static json::object Login() {
    auto r = HttpRequest(port(), "POST", "/v1/auth/login", LoginBody("olga", "olga-password"));
    EXPECT_EQ(r.status, 200) << r.body;
    return Json(r.body);
  }
  static HttpResult Refresh(const std::string& token) {
    return HttpRequest(port(), "POST", "/v1/auth/refresh",
                       R"({"refresh_token":")" + token + R"("})");
  }
  static HttpResult Form(const std::string& path, const std::string& body, bool basic = true) {
    std::vector<std::pair<std::string, std::string>> headers{kForm};
    if (basic) headers.emplace_back("Authorization", BasicAuth());
    return HttpRequest(port(), "POST", path, body, headers);
  }

  static TempDir* dir_;
  static BulwarkServer* server_;
};

TempDir* OAuthE2E::dir_ = nullptr;
BulwarkServer* OAuthE2E::server_ = nullptr;

TEST_F(OAuthE2E, RefreshRotatesAndReusingAnOldTokenRevokesTheFamily) {
  std::string r0 = Str(Login(), "refresh_token");
  ASSERT_FALSE(r0.empty());
  HttpResult first = Refresh(r0);
  ASSERT_EQ(first.status, 200) << first.body;
  std::string r1 = Str(Json(first.body), "refresh_token");
  std::string access = Str(Json(first.body), "access_token");
  ASSERT_FALSE(r1.empty());
  EXPECT_NE(r1, r0);
  EXPECT_EQ(
      HttpRequest(port(), "GET", "/v1/auth/verify", "", {{"Authorization", "Bearer " + access}})
          .status,
      200);
  HttpResult second = Refresh(r1);
  ASSERT_EQ(second.status, 200) << second.body;
  std::string r2 = Str(Json(second.body), "refresh_token");

  // r0 is two rotations old: a replay. The whole family dies, r2 included.
  HttpResult replay = Refresh(r0);
  EXPECT_EQ(replay.status, 400);
  EXPECT_EQ(Str(Json(replay.body), "error"), "invalid_grant");
  EXPECT_EQ(Refresh(r2).status, 400);
}

TEST_F(OAuthE2E, AnotherClientCannotRefreshALoginsTokenNorRevokeIt) {
  std::string r0 = Str(Login(), "refresh_token");
  ASSERT_FALSE(r0.empty());
  // Issued to the first-party login (no client): "reports" may not use it,
  // and its attempt must not count as a replay that revokes the family.
  HttpResult stolen = Form("/oauth2/token", "grant_type=refresh_token&refresh_token=" + r0);
  EXPECT_EQ(stolen.status, 400) << stolen.body;
  EXPECT_EQ(Str(Json(stolen.body), "error"), "invalid_grant");
  HttpResult own = Refresh(r0);
  EXPECT_EQ(own.status, 200) << own.body;
}

TEST_F(OAuthE2E, ConcurrentRefreshesOfManyFamiliesAllRotate) {
  // Many refreshes in flight at once go through the batched commit together;
  // every one must come back with its own successor, none lost or crossed.
  constexpr int kFamilies = 8;
  constexpr int kRounds = 10;
  std::vector<std::string> tokens;
  for (int i = 0; i < kFamilies; ++i) tokens.push_back(Str(Login(), "refresh_token"));
  std::atomic<int> rotated{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kFamilies; ++i) {
    threads.emplace_back([&, i] {
      std::string token = tokens[i];
      const std::string family = token.substr(0, token.find('.'));
      for (int round = 0; round < kRounds; ++round) {
        HttpResult r = Refresh(token);
        std::string next = Str(Json(r.body), "refresh_token");
        if (r.status != 200 || next.substr(0, next.find('.')) != family) return;
        token = next;
        ++rotated;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rotated.load(), kFamilies * kRounds);
}

TEST_F(OAuthE2E, LogoutEndsTheRefreshTokenToo) {
  json::object login = Login();
  std::string session = Str(login, "session_token");
  std::string refresh = Str(login, "refresh_token");
  ASSERT_EQ(
      HttpRequest(port(), "POST", "/v1/auth/logout", "", {{"Authorization", "Bearer " + session}})
          .status,
      204);
  HttpResult r = Refresh(refresh);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Str(Json(r.body), "error"), "invalid_grant");
}

TEST_F(OAuthE2E, MalformedRefreshRequestsAreRejected) {
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/auth/refresh", "{bad").status, 400);
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/auth/refresh", R"({"refresh_token":5})").status, 400);
  HttpResult r = Refresh("not-a-refresh-token");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Str(Json(r.body), "error"), "invalid_grant");
}

TEST_F(OAuthE2E, ClientCredentialsIntrospectionAndRevocation) {
  // client_secret_basic
  HttpResult token = Form("/oauth2/token", "grant_type=client_credentials&scope=reports%3Aread");
  ASSERT_EQ(token.status, 200) << token.body;
  json::object t = Json(token.body);
  EXPECT_EQ(Str(t, "token_type"), "Bearer");
  EXPECT_EQ(Str(t, "scope"), "reports:read");
  EXPECT_EQ(t.if_contains("refresh_token"), nullptr);
  EXPECT_EQ(token.Header("Cache-Control").value_or(""), "no-store");
  const std::string access = Str(t, "access_token");

  // client_secret_post
  HttpResult post = Form(
      "/oauth2/token",
      std::string("grant_type=client_credentials&client_id=reports&client_secret=") + kClientSecret,
      /*basic=*/false);
  EXPECT_EQ(post.status, 200) << post.body;

  HttpResult active = Form("/oauth2/introspect", "token=" + access);
  ASSERT_EQ(active.status, 200);
  json::object i = Json(active.body);
  EXPECT_TRUE(i.at("active").as_bool());
  EXPECT_EQ(Str(i, "client_id"), "reports");
  EXPECT_EQ(Str(i, "token_type"), "access_token");

  EXPECT_EQ(Form("/oauth2/revoke", "token=" + access).status, 200);
  HttpResult inactive = Form("/oauth2/introspect", "token=" + access);
  EXPECT_FALSE(Json(inactive.body).at("active").as_bool()) << inactive.body;
  EXPECT_EQ(
      HttpRequest(port(), "GET", "/v1/auth/verify", "", {{"Authorization", "Bearer " + access}})
          .status,
      401);
  EXPECT_EQ(Form("/oauth2/revoke", "token=unknown").status, 200);  // RFC 7009 §2.2
}

TEST_F(OAuthE2E, OAuthErrorsFollowRfc6749) {
  HttpResult wrong =
      Form("/oauth2/token", "grant_type=client_credentials&client_id=reports&client_secret=nope",
           /*basic=*/false);
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(Str(Json(wrong.body), "error"), "invalid_client");
  EXPECT_TRUE(wrong.Header("WWW-Authenticate").has_value());
  HttpResult none = Form("/oauth2/token", "grant_type=client_credentials", /*basic=*/false);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(Str(Json(Form("/oauth2/token", "grant_type=password").body), "error"),
            "unsupported_grant_type");
  EXPECT_EQ(Str(Json(Form("/oauth2/token", "").body), "error"), "invalid_request");
  EXPECT_EQ(
      Str(Json(Form("/oauth2/token", "grant_type=client_credentials&scope=admin").body), "error"),
      "invalid_scope");
  EXPECT_EQ(Str(Json(Form("/oauth2/token", "grant_type=a&grant_type=b").body), "error"),
            "invalid_request");  // repeated parameter
  EXPECT_EQ(Str(Json(Form("/oauth2/token", "grant_type=%zz").body), "error"), "invalid_request");
  EXPECT_EQ(Form("/oauth2/introspect", "").status, 400);
}

// RFC 6749 §2.3.1 form-encodes Basic credentials; curl -u does not. Both work.
TEST_F(OAuthE2E, BasicCredentialsWorkFormEncodedAndAsSent) {
  auto login = HttpRequest(port(), "POST", "/v1/auth/login", LoginBody("root", "root-password"));
  ASSERT_EQ(login.status, 200);
  const std::pair<std::string, std::string> admin{
      "Authorization", "Bearer " + Str(Json(login.body), "session_token")};
  const std::string secret =
      "q5+Xz/1kR0b7Hn2cVv8Wm4Tt6Yp3Lj9Gs0Ae1Df2Ui=";  // openssl rand -base64 32
  ASSERT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients",
                        R"({"client_id":"b64","client_secret":")" + secret + R"("})", {admin})
                .status,
            201);
  auto token = [&](const std::string& basic) {
    return HttpRequest(port(), "POST", "/oauth2/token", "grant_type=client_credentials",
                       {kForm, {"Authorization", basic}});
  };
  const std::string encoded = "q5%2BXz%2F1kR0b7Hn2cVv8Wm4Tt6Yp3Lj9Gs0Ae1Df2Ui%3D";
  EXPECT_EQ(token(BasicAuth("b64", encoded)).status, 200);
  EXPECT_EQ(token(BasicAuth("b64", secret)).status, 200);
  EXPECT_EQ(token(BasicAuth("b64", encoded)).status, 200);  // and again, from the client cache
  EXPECT_EQ(token(BasicAuth("b64", "q5 Xz/1kR0b7Hn2cVv8Wm4Tt6Yp3Lj9Gs0Ae1Df2Ui=")).status, 401);
  EXPECT_EQ(token(BasicAuth("b64", "q5%2BXz")).status, 401);
  // Not valid form-encoding at all ('%' without two hex digits): taken as sent.
  const std::string percent = "%zz-0123456789abcdef0123456789abcdef";
  ASSERT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients",
                        R"({"client_id":"pct","client_secret":")" + percent + R"("})", {admin})
                .status,
            201);
  EXPECT_EQ(token(BasicAuth("pct", percent)).status, 200);
  EXPECT_EQ(token(BasicAuth("pct", "%zz")).status, 401);
}

TEST_F(OAuthE2E, AdminManagesClientsWithoutEverSeeingSecrets) {
  auto login = HttpRequest(port(), "POST", "/v1/auth/login", LoginBody("root", "root-password"));
  ASSERT_EQ(login.status, 200);
  const std::pair<std::string, std::string> admin{
      "Authorization", "Bearer " + Str(Json(login.body), "session_token")};
  const std::string body =
      R"({"client_id":"batch","client_secret":"batch-secret-0123456789abcdefghijkl",)"
      R"("grants":["client_credentials"],"scopes":["batch:run"]})";
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients", body, {admin}).status, 201);
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients", body, {admin}).status, 409);
  // A weak secret, a bad grant, a wrong type: 400, nothing created.
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients",
                        R"({"client_id":"weak","client_secret":"short"})", {admin})
                .status,
            400);
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients",
                        R"({"client_id":"g","client_secret":"0123456789abcdef0123456789abcdef",)"
                        R"("grants":["password"]})",
                        {admin})
                .status,
            400);
  EXPECT_EQ(HttpRequest(port(), "POST", "/v1/admin/clients",
                        R"({"client_id":"t","client_secret":"0123456789abcdef0123456789abcdef",)"
                        R"("scopes":"x"})",
                        {admin})
                .status,
            400);
  HttpResult list = HttpRequest(port(), "GET", "/v1/admin/clients", "", {admin});
  ASSERT_EQ(list.status, 200);
  EXPECT_NE(list.body.find(R"("client_id":"batch")"), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find("secret"), std::string::npos) << list.body;
  EXPECT_EQ(list.body.find(R"("client_id":"weak")"), std::string::npos);
  // Not an admin: 403.
  auto olga = HttpRequest(port(), "POST", "/v1/auth/login", LoginBody("olga", "olga-password"));
  EXPECT_EQ(HttpRequest(port(), "GET", "/v1/admin/clients", "",
                        {{"Authorization", "Bearer " + Str(Json(olga.body), "session_token")}})
                .status,
            403);
  EXPECT_EQ(HttpRequest(port(), "DELETE", "/v1/admin/clients/batch", "", {admin}).status, 204);
  EXPECT_EQ(HttpRequest(port(), "DELETE", "/v1/admin/clients/batch", "", {admin}).status, 404);
}

}  // namespace
}  // namespace bulwark::testing

namespace bulwark::testing {
namespace {

TEST(OAuthCliE2E, ClientAddRefusesWeakSecretsAndLongIdsWithOneLine) {
  TempDir dir;
  const std::string log = dir.File("cli.log");
  EXPECT_EQ(
      RunBulwark(dir.path(), {"client", "add", "--id", "weak", "--secret-stdin"}, log, "short\n"),
      2);
  std::ifstream in(log);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(all.find("the client secret must have 32-1024 characters"), std::string::npos) << all;
  EXPECT_EQ(
      RunBulwark(dir.path(), {"client", "add", "--id", std::string(300, 'x'), "--secret-stdin"},
                 log, "0123456789abcdef0123456789abcdef\n"),
      2);
  EXPECT_EQ(RunBulwark(dir.path(), {"client", "list"}, dir.File("list.log")), 0);
  std::ifstream listed(dir.File("list.log"));
  std::string list((std::istreambuf_iterator<char>(listed)), std::istreambuf_iterator<char>());
  EXPECT_EQ(list.find("weak"), std::string::npos) << list;  // nothing was created
}

}  // namespace
}  // namespace bulwark::testing
