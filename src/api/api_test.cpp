// Handlers over a fake store: status codes and bodies without a socket.
#include <string_view>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "api/api.hpp"
#include "crypto/tokens.hpp"
#include "tests/support/memory_store.hpp"

namespace bulwark::api {
namespace {

namespace json = boost::json;

class ApiTest : public ::testing::Test {
 protected:
  ApiTest()
      : store_(std::make_shared<testing::MemoryStore>()),
        hasher_(Argon2Params{1, 8 * 1024}),
        auth_(*store_, *store_, *store_, hasher_, clock_, metrics_, AuthOptions{}),
        admin_(*store_, *store_, *store_, *store_, hasher_, clock_),
        health_({{"database", "memory", store_, true}, {"redis", "embedded", nullptr, true}},
                clock_, "replica-1"),
        context_{auth_, admin_, health_, metrics_, CookieOptions{}} {
    InitCrypto();
    RegisterRoutes(router_, context_);
    EXPECT_TRUE(admin_.CreateUser(NewUser{"alice", "alice-password", "", {}}).ok());
    health_.Refresh();
    health_.MarkStarted();
  }

  http::HttpResponse Call(const std::string& method, const std::string& path,
                          const std::string& body = "", const std::string& bearer = "") {
    http::HttpRequest req;
    req.method = method;
    req.target = req.path = path;
    req.body = body;
    req.remote_address = "127.0.0.1";
    if (!bearer.empty()) req.headers.emplace_back("Authorization", "Bearer " + bearer);
    auto match = router_.Find(req);
    if (match.status != 200) return http::HttpResponse::Error(match.status, "routing", "");
    return match.route->handler(req).RunInline();
  }

  std::string Login() {
    auto r = Call("POST", "/v1/auth/login", R"({"username":"alice","password":"alice-password"})");
    EXPECT_EQ(r.status, 200) << r.body;
    return std::string(json::parse(r.body).at("session_token").as_string());
  }

  FakeClock clock_;
  metrics::Registry metrics_;
  std::shared_ptr<testing::MemoryStore> store_;
  PasswordHasher hasher_;
  AuthService auth_;
  AdminService admin_;
  HealthMonitor health_;
  ApiContext context_;
  http::Router router_;
};

TEST_F(ApiTest, VerifyAnswers503NotUnauthorizedWhenTheStoreIsDown) {
  std::string token = Login();
  store_->unavailable = true;
  auto r = Call("GET", "/v1/auth/verify", "", token);
  EXPECT_EQ(r.status, 503);
  ASSERT_NE(r.Header("Retry-After"), nullptr);
  EXPECT_EQ(json::parse(r.body).at("error").as_string(), "unavailable");
  // The store's own message (could name hosts) does not reach the client.
  EXPECT_EQ(r.body.find("memory store"), std::string::npos);
  store_->unavailable = false;
  EXPECT_EQ(Call("GET", "/v1/auth/verify", "", token).status, 200);
}

TEST_F(ApiTest, LoginAnswers503WhenTheUserStoreIsDown) {
  store_->unavailable = true;
  auto r = Call("POST", "/v1/auth/login", R"({"username":"alice","password":"alice-password"})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.Header("Set-Cookie"), nullptr);
}

// Login starts on the store pool, hashes on the hashing pool and writes the
// session on the store pool; an unknown user takes the same steps.
TEST_F(ApiTest, LoginHopsStoreHashStoreEvenForAnUnknownUser) {
  for (const char* body : {R"({"username":"alice","password":"alice-password"})",
                           R"({"username":"alice","password":"wrong"})",
                           R"({"username":"nobody","password":"alice-password"})"}) {
    http::HttpRequest req;
    req.method = "POST";
    req.target = req.path = "/v1/auth/login";
    req.body = body;
    auto match = router_.Find(req);
    ASSERT_EQ(match.status, 200);
    EXPECT_EQ(match.route->executor, http::Executor::kStore);
    http::Reply first = match.route->handler(req);
    ASSERT_TRUE(first.has_next()) << body;
    EXPECT_EQ(first.next_executor(), http::Executor::kHash);
    http::Reply second = first.TakeNext()();
    const bool ok = std::string_view(body) == R"({"username":"alice","password":"alice-password"})";
    ASSERT_EQ(second.has_next(), ok) << body;
    if (!ok) {
      EXPECT_EQ(second.response().status, 401);
      continue;
    }
    EXPECT_EQ(second.next_executor(), http::Executor::kStore);
    EXPECT_EQ(std::move(second).RunInline().status, 200);
  }
}

TEST_F(ApiTest, UnknownUserAndWrongPasswordGetTheSame401Body) {
  auto unknown = Call("POST", "/v1/auth/login", R"({"username":"nobody","password":"x"})");
  auto wrong = Call("POST", "/v1/auth/login", R"({"username":"alice","password":"x"})");
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(unknown.body, wrong.body);
  EXPECT_EQ(json::parse(wrong.body).at("error").as_string(), "invalid_credentials");
}

TEST_F(ApiTest, HealthTurns503WhenDrainingOrAStoreIsDown) {
  EXPECT_EQ(Call("GET", "/health").status, 200);
  store_->unavailable = true;
  health_.Refresh();
  auto down = Call("GET", "/health");
  EXPECT_EQ(down.status, 503);
  auto body = json::parse(down.body).as_object();
  EXPECT_EQ(body.at("status").as_string(), "unhealthy");
  EXPECT_EQ(body.at("components").at("database").at("status").as_string(), "down");
  // Liveness never depends on a store.
  EXPECT_EQ(Call("GET", "/health/live").status, 200);

  store_->unavailable = false;
  health_.Refresh();
  EXPECT_EQ(Call("GET", "/health").status, 200);
  health_.MarkDraining();
  auto draining = Call("GET", "/health");
  EXPECT_EQ(draining.status, 503);
  EXPECT_EQ(json::parse(draining.body).at("draining").as_bool(), true);
}

TEST_F(ApiTest, MetricsAreExposedAsPrometheusText) {
  Login();
  auto r = Call("GET", "/metrics");
  EXPECT_EQ(r.status, 200);
  ASSERT_NE(r.Header("Content-Type"), nullptr);
  EXPECT_NE(r.Header("Content-Type")->find("text/plain"), std::string::npos);
  EXPECT_NE(r.body.find("bulwark_logins_total{result=\"success\"} 1"), std::string::npos) << r.body;
}

TEST_F(ApiTest, ConfigValuesKeepTheirJsonType) {
  ASSERT_TRUE(admin_.CreateUser(NewUser{"root", "root-password", "", {"admin"}}).ok());
  auto login = Call("POST", "/v1/auth/login", R"({"username":"root","password":"root-password"})");
  std::string token(json::parse(login.body).at("session_token").as_string());
  for (const char* value : {"42", "\"text\"", "[1,2]", "{\"a\":null}", "true", "null"}) {
    auto put = Call("PUT", "/v1/admin/config/k", std::string(R"({"value":)") + value + "}", token);
    ASSERT_EQ(put.status, 200) << put.body;
    auto got = Call("GET", "/v1/admin/config/k", "", token);
    EXPECT_EQ(json::serialize(json::parse(got.body).at("value")), value);
  }
}

}  // namespace
}  // namespace bulwark::api
