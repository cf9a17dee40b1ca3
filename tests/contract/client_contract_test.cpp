// Contract of ClientStore (src/storage/client_store.hpp), run by
// StoreContractTest against every back-end that provides one (others skip).
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "crypto/tokens.hpp"
#include "tests/contract/store_contract.hpp"

namespace bulwark::testing {
namespace {

OAuthClient MakeClient(const std::string& id) {
  OAuthClient c;
  c.id = id;
  c.secret_hash = "sha256:" + Sha256Hex("secret-of-" + id);
  c.grants = {"client_credentials", "refresh_token"};
  c.scopes = {"api:read", "api:write", "openid"};
  c.created_at = 1'700'000'000;
  return c;
}

#define REQUIRE_CLIENT_STORE()                                    \
  do {                                                            \
    if (!stores_.clients) GTEST_SKIP() << "no client store here"; \
  } while (0)

TEST_P(StoreContractTest, ClientRoundTripsVerbatim) {
  REQUIRE_CLIENT_STORE();
  OAuthClient c = MakeClient("billing-service");
  c.certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  c.disabled = true;
  ASSERT_TRUE(IsOk(stores_.clients->CreateClient(c)));
  auto got = stores_.clients->GetClient("billing-service");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(*got, c);
}

TEST_P(StoreContractTest, ClientWithNoGrantsOrScopesRoundTrips) {
  REQUIRE_CLIENT_STORE();
  OAuthClient c = MakeClient("bare");
  c.grants.clear();
  c.scopes.clear();
  ASSERT_TRUE(IsOk(stores_.clients->CreateClient(c)));
  auto got = stores_.clients->GetClient("bare");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(*got, c);
}

TEST_P(StoreContractTest, DuplicateClientIdIsAlreadyExists) {
  REQUIRE_CLIENT_STORE();
  ASSERT_TRUE(IsOk(stores_.clients->CreateClient(MakeClient("dup"))));
  OAuthClient other = MakeClient("dup");
  other.scopes = {"other"};
  EXPECT_TRUE(IsError(stores_.clients->CreateClient(other), ErrorCode::kAlreadyExists));
  auto got = stores_.clients->GetClient("dup");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->scopes, MakeClient("dup").scopes);  // the first one stays
}

TEST_P(StoreContractTest, ClientScopesWithWhitespaceAreRejected) {
  REQUIRE_CLIENT_STORE();
  OAuthClient c = MakeClient("spaced");
  c.scopes = {"api read"};
  EXPECT_TRUE(IsError(stores_.clients->CreateClient(c), ErrorCode::kInvalidArgument));
  EXPECT_TRUE(IsError(stores_.clients->GetClient("spaced"), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, ClientsAreListedByIdAndDeleted) {
  REQUIRE_CLIENT_STORE();
  for (const char* id : {"zeta", "alpha", "mid"}) {
    ASSERT_TRUE(IsOk(stores_.clients->CreateClient(MakeClient(id))));
  }
  auto listed = stores_.clients->ListClients();
  ASSERT_TRUE(IsOk(listed));
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].id, "alpha");
  EXPECT_EQ((*listed)[1].id, "mid");
  EXPECT_EQ((*listed)[2].id, "zeta");
  ASSERT_TRUE(IsOk(stores_.clients->DeleteClient("mid")));
  EXPECT_TRUE(IsError(stores_.clients->DeleteClient("mid"), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.clients->GetClient("mid"), ErrorCode::kNotFound));
  listed = stores_.clients->ListClients();
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(listed->size(), 2u);
}

TEST_P(StoreContractTest, RacingCreationsOfOneClientIdHaveOneWinner) {
  REQUIRE_CLIENT_STORE();
  constexpr int kThreads = 6;
  std::atomic<int> ok{0}, exists{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      Status s = stores_.clients->CreateClient(MakeClient("racy"));
      if (s.ok()) {
        ++ok;
      } else if (s.error().IsAlreadyExists()) {
        ++exists;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), kThreads - 1);
}

}  // namespace
}  // namespace bulwark::testing
