// The store contract: what every back-end (SQLite now; PostgreSQL + Redis
// next) must do, checked only through the interfaces in storage/stores.hpp.
//
// Times are real Unix seconds (a back-end may turn expires_at into a TTL), and
// every "later" is a `now` argument in the future rather than a sleep.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain/model.hpp"
#include "tests/contract/store_contract.hpp"

namespace bulwark::testing {
namespace {

int64_t WallNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomHex(size_t length) {
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(length, '0');
  for (char& c : out) c = kHex[rng() & 0xf];
  return out;
}

// A UUID v4 in canonical lower-case text (the crypto module is not needed here).
std::string NewUuid() {
  std::string hex = RandomHex(32);
  hex[12] = '4';
  hex[16] = "89ab"[hex[16] % 4];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

// Stands in for the hex SHA-256 of a session token.
std::string NewTokenHash() { return RandomHex(64); }

User MakeUser(const std::string& username, int64_t now) {
  User user;
  user.id = NewUuid();
  user.username = username;
  user.email = username + "@example.com";
  user.password_hash = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
  user.disabled = false;
  user.created_at = now;
  user.last_modified = now;
  return user;
}

Role MakeRole(const std::string& name) {
  Role role;
  role.id = NewUuid();
  role.name = name;
  role.permissions_json = R"(["users:read","sessions:revoke"])";
  return role;
}

Session MakeSession(const std::string& user_id, int64_t created_at, int64_t expires_at) {
  Session session;
  session.token_hash = NewTokenHash();
  session.user_id = user_id;
  session.username = "alice";
  session.roles = {"admin", "user"};
  session.created_at = created_at;
  session.expires_at = expires_at;
  session.client = "web";
  session.ip = "203.0.113.7";
  session.user_agent = "Mozilla/5.0 (X11; Linux x86_64)";
  return session;
}

void ExpectSameUser(const User& expected, const User& actual) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.username, expected.username);
  EXPECT_EQ(actual.email, expected.email);
  EXPECT_EQ(actual.password_hash, expected.password_hash);
  EXPECT_EQ(actual.disabled, expected.disabled);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.last_modified, expected.last_modified);
}

void ExpectSameSession(const Session& expected, const Session& actual) {
  EXPECT_EQ(actual.token_hash, expected.token_hash);
  EXPECT_EQ(actual.user_id, expected.user_id);
  EXPECT_EQ(actual.username, expected.username);
  EXPECT_EQ(actual.roles, expected.roles);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
  EXPECT_EQ(actual.client, expected.client);
  EXPECT_EQ(actual.ip, expected.ip);
  EXPECT_EQ(actual.user_agent, expected.user_agent);
}

std::vector<std::string> Usernames(const std::vector<User>& users) {
  std::vector<std::string> names;
  for (const User& user : users) names.push_back(user.username);
  return names;
}

std::vector<std::string> TokenHashes(const std::vector<Session>& sessions) {
  std::vector<std::string> hashes;
  for (const Session& session : sessions) hashes.push_back(session.token_hash);
  return hashes;
}

// --- Health ---------------------------------------------------------------------

TEST_P(StoreContractTest, PingAnswersAndKindsAreNamed) {
  EXPECT_TRUE(IsOk(stores_.database->Ping()));
  EXPECT_TRUE(IsOk(stores_.session_backend->Ping()));
  EXPECT_FALSE(stores_.database_kind.empty());
  EXPECT_FALSE(stores_.session_kind.empty());
}

// --- Users ----------------------------------------------------------------------

TEST_P(StoreContractTest, CreatedUserIsFoundByIdAndByUsername) {
  User alice = MakeUser("alice", WallNow());
  alice.disabled = true;
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));

  Result<User> by_id = stores_.users->GetUserById(alice.id);
  ASSERT_TRUE(IsOk(by_id));
  ExpectSameUser(alice, *by_id);

  Result<User> by_name = stores_.users->GetUserByUsername("alice");
  ASSERT_TRUE(IsOk(by_name));
  ExpectSameUser(alice, *by_name);
}

TEST_P(StoreContractTest, UserFieldsAreStoredVerbatim) {
  // Values that break string-built SQL or naive encodings.
  User odd = MakeUser("o'brien\"; DROP TABLE users; --", WallNow());
  odd.email = "zoë+tag@exämple.com";
  odd.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$\\salt$\"hash\"";
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(odd)));
  User unicode = MakeUser("名前🔑", WallNow());
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(unicode)));

  Result<User> got = stores_.users->GetUserByUsername(odd.username);
  ASSERT_TRUE(IsOk(got));
  ExpectSameUser(odd, *got);
  got = stores_.users->GetUserByUsername(unicode.username);
  ASSERT_TRUE(IsOk(got));
  ExpectSameUser(unicode, *got);
  Result<std::vector<User>> all = stores_.users->ListUsers();
  ASSERT_TRUE(IsOk(all));
  EXPECT_EQ(all->size(), 2u);
}

TEST_P(StoreContractTest, DuplicateUsernameOrIdIsAlreadyExists) {
  int64_t now = WallNow();
  User alice = MakeUser("alice", now);
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));

  User same_name = MakeUser("alice", now);
  EXPECT_TRUE(IsError(stores_.users->CreateUser(same_name), ErrorCode::kAlreadyExists));
  User same_id = MakeUser("bob", now);
  same_id.id = alice.id;
  EXPECT_TRUE(IsError(stores_.users->CreateUser(same_id), ErrorCode::kAlreadyExists));

  // The original is untouched and nothing else was added.
  Result<User> got = stores_.users->GetUserById(alice.id);
  ASSERT_TRUE(IsOk(got));
  ExpectSameUser(alice, *got);
  Result<std::vector<User>> all = stores_.users->ListUsers();
  ASSERT_TRUE(IsOk(all));
  EXPECT_EQ(all->size(), 1u);
}

TEST_P(StoreContractTest, MissingUserIsNotFound) {
  EXPECT_TRUE(IsError(stores_.users->GetUserById(NewUuid()), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.users->GetUserByUsername("nobody"), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, ListUsersIsOrderedByUsername) {
  Result<std::vector<User>> empty = stores_.users->ListUsers();
  ASSERT_TRUE(IsOk(empty));
  EXPECT_TRUE(empty->empty());

  int64_t now = WallNow();
  for (const char* name : {"carol", "alice", "dave", "bob"}) {
    ASSERT_TRUE(IsOk(stores_.users->CreateUser(MakeUser(name, now))));
  }
  Result<std::vector<User>> all = stores_.users->ListUsers();
  ASSERT_TRUE(IsOk(all));
  EXPECT_EQ(Usernames(*all), (std::vector<std::string>{"alice", "bob", "carol", "dave"}));
}

TEST_P(StoreContractTest, UpdatePasswordHashBumpsLastModified) {
  int64_t now = WallNow();
  User alice = MakeUser("alice", now);
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));

  ASSERT_TRUE(IsOk(stores_.users->UpdatePasswordHash(alice.id, "$argon2id$new", now + 10)));
  Result<User> got = stores_.users->GetUserById(alice.id);
  ASSERT_TRUE(IsOk(got));
  User expected = alice;
  expected.password_hash = "$argon2id$new";
  expected.last_modified = now + 10;
  ExpectSameUser(expected, *got);

  EXPECT_TRUE(IsError(stores_.users->UpdatePasswordHash(NewUuid(), "$argon2id$x", now),
                      ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, SetDisabledBumpsLastModified) {
  int64_t now = WallNow();
  User alice = MakeUser("alice", now);
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));

  ASSERT_TRUE(IsOk(stores_.users->SetDisabled(alice.id, true, now + 20)));
  Result<User> got = stores_.users->GetUserById(alice.id);
  ASSERT_TRUE(IsOk(got));
  EXPECT_TRUE(got->disabled);
  EXPECT_EQ(got->last_modified, now + 20);
  EXPECT_EQ(got->created_at, now);
  EXPECT_EQ(got->password_hash, alice.password_hash);

  ASSERT_TRUE(IsOk(stores_.users->SetDisabled(alice.id, false, now + 30)));
  got = stores_.users->GetUserById(alice.id);
  ASSERT_TRUE(IsOk(got));
  EXPECT_FALSE(got->disabled);
  EXPECT_EQ(got->last_modified, now + 30);

  EXPECT_TRUE(IsError(stores_.users->SetDisabled(NewUuid(), true, now), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, UpdateEmailBumpsLastModified) {
  int64_t now = WallNow();
  User alice = MakeUser("alice", now);
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));

  ASSERT_TRUE(IsOk(stores_.users->UpdateEmail(alice.id, "alice@new.example", now + 5)));
  Result<User> got = stores_.users->GetUserById(alice.id);
  ASSERT_TRUE(IsOk(got));
  User expected = alice;
  expected.email = "alice@new.example";
  expected.last_modified = now + 5;
  ExpectSameUser(expected, *got);

  EXPECT_TRUE(
      IsError(stores_.users->UpdateEmail(NewUuid(), "x@example.com", now), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, DeleteUserRemovesUserAndTheirGrants) {
  int64_t now = WallNow();
  User alice = MakeUser("alice", now);
  User bob = MakeUser("bob", now);
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(bob)));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "admin")));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(bob.id, "admin")));

  ASSERT_TRUE(IsOk(stores_.users->DeleteUser(alice.id)));
  EXPECT_TRUE(IsError(stores_.users->GetUserById(alice.id), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.users->GetUserByUsername("alice"), ErrorCode::kNotFound));
  Result<std::vector<std::string>> alice_roles = stores_.roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(alice_roles));
  EXPECT_TRUE(alice_roles->empty());
  EXPECT_TRUE(IsError(stores_.users->DeleteUser(alice.id), ErrorCode::kNotFound));

  // The role and other users' grants stay.
  EXPECT_TRUE(IsOk(stores_.roles->GetRoleByName("admin")));
  Result<std::vector<std::string>> bob_roles = stores_.roles->ListUserRoles(bob.id);
  ASSERT_TRUE(IsOk(bob_roles));
  EXPECT_EQ(*bob_roles, std::vector<std::string>{"admin"});

  // A user re-created with the same id does not inherit stale grants.
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));
  alice_roles = stores_.roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(alice_roles));
  EXPECT_TRUE(alice_roles->empty());
}

TEST_P(StoreContractTest, ConcurrentCreationOfOneUsernameHasExactlyOneWinner) {
  constexpr int kThreads = 8;
  int64_t now = WallNow();
  std::atomic<int> created{0};
  std::atomic<int> already_exists{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      Status s = stores_.users->CreateUser(MakeUser("contested", now));
      if (s.ok()) {
        ++created;
      } else if (s.error().IsAlreadyExists()) {
        ++already_exists;
      } else {
        ++other;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(already_exists.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

// --- Roles ----------------------------------------------------------------------

TEST_P(StoreContractTest, CreatedRoleIsFoundAndListedByName) {
  Result<std::vector<Role>> empty = stores_.roles->ListRoles();
  ASSERT_TRUE(IsOk(empty));
  EXPECT_TRUE(empty->empty());

  Role operators = MakeRole("operator");
  operators.permissions_json = R"({"sessions":["list","revoke"],"note":"quote \" and \\"})";
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(operators)));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("viewer"))));

  Result<Role> got = stores_.roles->GetRoleByName("operator");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->id, operators.id);
  EXPECT_EQ(got->name, "operator");
  EXPECT_EQ(got->permissions_json, operators.permissions_json);

  Result<std::vector<Role>> all = stores_.roles->ListRoles();
  ASSERT_TRUE(IsOk(all));
  std::vector<std::string> names;
  for (const Role& role : *all) names.push_back(role.name);
  EXPECT_EQ(names, (std::vector<std::string>{"admin", "operator", "viewer"}));
}

TEST_P(StoreContractTest, DuplicateRoleNameIsAlreadyExistsAndMissingRoleIsNotFound) {
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));
  EXPECT_TRUE(IsError(stores_.roles->CreateRole(MakeRole("admin")), ErrorCode::kAlreadyExists));
  EXPECT_TRUE(IsError(stores_.roles->GetRoleByName("nope"), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.roles->DeleteRole("nope"), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, DeleteRoleRemovesEveryGrantOfIt) {
  int64_t now = WallNow();
  User alice = MakeUser("alice", now);
  User bob = MakeUser("bob", now);
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(bob)));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("viewer"))));
  for (const User* user : {&alice, &bob}) {
    ASSERT_TRUE(IsOk(stores_.roles->GrantRole(user->id, "admin")));
    ASSERT_TRUE(IsOk(stores_.roles->GrantRole(user->id, "viewer")));
  }

  ASSERT_TRUE(IsOk(stores_.roles->DeleteRole("admin")));
  EXPECT_TRUE(IsError(stores_.roles->GetRoleByName("admin"), ErrorCode::kNotFound));
  for (const User* user : {&alice, &bob}) {
    Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(user->id);
    ASSERT_TRUE(IsOk(roles));
    EXPECT_EQ(*roles, std::vector<std::string>{"viewer"});
  }
  EXPECT_TRUE(IsError(stores_.roles->DeleteRole("admin"), ErrorCode::kNotFound));

  // A new role with the old name starts without grants.
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));
  Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(roles));
  EXPECT_EQ(*roles, std::vector<std::string>{"viewer"});
}

TEST_P(StoreContractTest, GrantIsIdempotentAndUserRolesAreOrderedByName) {
  User alice = MakeUser("alice", WallNow());
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));
  for (const char* name : {"viewer", "admin", "operator"}) {
    ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole(name))));
  }
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "viewer")));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "admin")));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "admin")));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "operator")));

  Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(roles));
  EXPECT_EQ(*roles, (std::vector<std::string>{"admin", "operator", "viewer"}));
}

TEST_P(StoreContractTest, GrantOrRevokeWithUnknownUserOrRoleIsNotFound) {
  User alice = MakeUser("alice", WallNow());
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));

  EXPECT_TRUE(IsError(stores_.roles->GrantRole(NewUuid(), "admin"), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.roles->GrantRole(alice.id, "ghost"), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.roles->RevokeRole(NewUuid(), "admin"), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.roles->RevokeRole(alice.id, "ghost"), ErrorCode::kNotFound));

  Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(roles));
  EXPECT_TRUE(roles->empty());
}

TEST_P(StoreContractTest, RevokeRemovesOneGrantAndIsIdempotent) {
  User alice = MakeUser("alice", WallNow());
  ASSERT_TRUE(IsOk(stores_.users->CreateUser(alice)));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("admin"))));
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("viewer"))));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "admin")));
  ASSERT_TRUE(IsOk(stores_.roles->GrantRole(alice.id, "viewer")));

  ASSERT_TRUE(IsOk(stores_.roles->RevokeRole(alice.id, "admin")));
  ASSERT_TRUE(IsOk(stores_.roles->RevokeRole(alice.id, "admin")));
  Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(alice.id);
  ASSERT_TRUE(IsOk(roles));
  EXPECT_EQ(*roles, std::vector<std::string>{"viewer"});
  // Revoking leaves the role itself alone.
  EXPECT_TRUE(IsOk(stores_.roles->GetRoleByName("admin")));
}

TEST_P(StoreContractTest, RolesOfUnknownUserAreEmpty) {
  Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(NewUuid());
  ASSERT_TRUE(IsOk(roles));
  EXPECT_TRUE(roles->empty());
}

// --- Configuration --------------------------------------------------------------

TEST_P(StoreContractTest, ConfigPutGetReplaceListDelete) {
  int64_t now = WallNow();
  Result<std::vector<ConfigEntry>> empty = stores_.config->ListConfig();
  ASSERT_TRUE(IsOk(empty));
  EXPECT_TRUE(empty->empty());
  EXPECT_TRUE(IsError(stores_.config->GetConfig("session.ttl"), ErrorCode::kNotFound));

  ASSERT_TRUE(IsOk(stores_.config->PutConfig({"session.ttl", "3600", now})));
  ASSERT_TRUE(IsOk(stores_.config->PutConfig({"ids.rules", R"({"max":"5 \"per\" min"})", now})));
  Result<ConfigEntry> got = stores_.config->GetConfig("session.ttl");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->key, "session.ttl");
  EXPECT_EQ(got->value_json, "3600");
  EXPECT_EQ(got->last_modified, now);

  // Put replaces value and last_modified.
  ASSERT_TRUE(IsOk(stores_.config->PutConfig({"session.ttl", R"({"seconds":7200})", now + 9})));
  got = stores_.config->GetConfig("session.ttl");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->value_json, R"({"seconds":7200})");
  EXPECT_EQ(got->last_modified, now + 9);

  Result<std::vector<ConfigEntry>> all = stores_.config->ListConfig();
  ASSERT_TRUE(IsOk(all));
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "ids.rules");
  EXPECT_EQ((*all)[0].value_json, R"({"max":"5 \"per\" min"})");
  EXPECT_EQ((*all)[1].key, "session.ttl");

  ASSERT_TRUE(IsOk(stores_.config->DeleteConfig("session.ttl")));
  EXPECT_TRUE(IsError(stores_.config->GetConfig("session.ttl"), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.config->DeleteConfig("session.ttl"), ErrorCode::kNotFound));
  all = stores_.config->ListConfig();
  ASSERT_TRUE(IsOk(all));
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].key, "ids.rules");
}

// --- Sessions -------------------------------------------------------------------

TEST_P(StoreContractTest, CreatedSessionRoundTrips) {
  int64_t now = WallNow();
  Session session = MakeSession(NewUuid(), now, now + 3600);
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(session)));
  Result<Session> got = stores_.sessions->GetSession(session.token_hash, now);
  ASSERT_TRUE(IsOk(got));
  ExpectSameSession(session, *got);
}

TEST_P(StoreContractTest, SessionWithEmptyOptionalFieldsRoundTrips) {
  int64_t now = WallNow();
  Session session = MakeSession(NewUuid(), now, now + 60);
  session.roles.clear();
  session.client.clear();
  session.ip.clear();
  session.user_agent.clear();
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(session)));
  Result<Session> got = stores_.sessions->GetSession(session.token_hash, now);
  ASSERT_TRUE(IsOk(got));
  ExpectSameSession(session, *got);
}

TEST_P(StoreContractTest, SessionRolesRoundTripWhateverTheirCharacters) {
  int64_t now = WallNow();
  Session session = MakeSession(NewUuid(), now, now + 3600);
  session.roles = {
      "admin",
      "say \"hi\"",
      "back\\slash",
      "管理者",
      "clé 🔑",
      "tab\tnew\nline\r",
      std::string("ctl\x01\x1f", 5),
      "[\"not\",\"an\",\"array\"]",
      "",
      "/slash/ and \\u0041 literally",
  };
  session.user_agent = "agent \"quoted\" \\ 🚀";
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(session)));
  Result<Session> got = stores_.sessions->GetSession(session.token_hash, now);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->roles, session.roles);
  EXPECT_EQ(got->user_agent, session.user_agent);

  Result<std::vector<Session>> listed = stores_.sessions->ListUserSessions(session.user_id, now);
  ASSERT_TRUE(IsOk(listed));
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].roles, session.roles);
}

TEST_P(StoreContractTest, DuplicateTokenHashIsAlreadyExists) {
  int64_t now = WallNow();
  Session first = MakeSession(NewUuid(), now, now + 60);
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(first)));
  Session second = MakeSession(NewUuid(), now, now + 120);
  second.token_hash = first.token_hash;
  EXPECT_TRUE(IsError(stores_.sessions->CreateSession(second), ErrorCode::kAlreadyExists));

  Result<Session> got = stores_.sessions->GetSession(first.token_hash, now);
  ASSERT_TRUE(IsOk(got));
  ExpectSameSession(first, *got);
  Result<std::vector<Session>> of_second = stores_.sessions->ListUserSessions(second.user_id, now);
  ASSERT_TRUE(IsOk(of_second));
  EXPECT_TRUE(of_second->empty());
}

TEST_P(StoreContractTest, MissingSessionIsNotFound) {
  EXPECT_TRUE(
      IsError(stores_.sessions->GetSession(NewTokenHash(), WallNow()), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, SessionExpiresWhenExpiresAtReachesNow) {
  int64_t now = WallNow();
  Session session = MakeSession(NewUuid(), now, now + 60);
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(session)));

  EXPECT_TRUE(IsOk(stores_.sessions->GetSession(session.token_hash, now + 59)));
  EXPECT_TRUE(
      IsError(stores_.sessions->GetSession(session.token_hash, now + 60), ErrorCode::kNotFound));
  EXPECT_TRUE(
      IsError(stores_.sessions->GetSession(session.token_hash, now + 3600), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, TouchMovesExpiryOfLiveSessionsOnly) {
  int64_t now = WallNow();
  Session session = MakeSession(NewUuid(), now, now + 60);
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(session)));

  ASSERT_TRUE(IsOk(stores_.sessions->TouchSession(session.token_hash, now + 600, now + 30)));
  Result<Session> got = stores_.sessions->GetSession(session.token_hash, now + 300);
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(got->expires_at, now + 600);
  EXPECT_EQ(got->created_at, now);
  EXPECT_TRUE(
      IsError(stores_.sessions->GetSession(session.token_hash, now + 600), ErrorCode::kNotFound));

  // Expired (expires_at <= now) or absent: nothing to renew.
  EXPECT_TRUE(IsError(stores_.sessions->TouchSession(session.token_hash, now + 1200, now + 600),
                      ErrorCode::kNotFound));
  EXPECT_TRUE(
      IsError(stores_.sessions->GetSession(session.token_hash, now + 700), ErrorCode::kNotFound));
  EXPECT_TRUE(IsError(stores_.sessions->TouchSession(NewTokenHash(), now + 600, now),
                      ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, DeleteSessionIsIdempotent) {
  int64_t now = WallNow();
  Session session = MakeSession(NewUuid(), now, now + 60);
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(session)));

  ASSERT_TRUE(IsOk(stores_.sessions->DeleteSession(session.token_hash)));
  EXPECT_TRUE(IsError(stores_.sessions->GetSession(session.token_hash, now), ErrorCode::kNotFound));
  EXPECT_TRUE(IsOk(stores_.sessions->DeleteSession(session.token_hash)));
  EXPECT_TRUE(IsOk(stores_.sessions->DeleteSession(NewTokenHash())));
  Result<std::vector<Session>> listed = stores_.sessions->ListUserSessions(session.user_id, now);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_TRUE(listed->empty());
}

TEST_P(StoreContractTest, ListUserSessionsReturnsOnlyThatUsersLiveSessionsByCreation) {
  int64_t now = WallNow();
  std::string alice = NewUuid();
  std::string bob = NewUuid();
  Session newest = MakeSession(alice, now + 3, now + 3600);
  Session oldest = MakeSession(alice, now + 1, now + 3600);
  Session middle = MakeSession(alice, now + 2, now + 7200);
  Session expiring = MakeSession(alice, now, now + 10);
  Session bobs = MakeSession(bob, now, now + 3600);
  for (const Session* s : {&newest, &oldest, &middle, &expiring, &bobs}) {
    ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(*s)));
  }

  Result<std::vector<Session>> listed = stores_.sessions->ListUserSessions(alice, now + 5);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(TokenHashes(*listed), (std::vector<std::string>{expiring.token_hash, oldest.token_hash,
                                                            middle.token_hash, newest.token_hash}));
  ASSERT_EQ(listed->size(), 4u);
  ExpectSameSession(oldest, (*listed)[1]);

  // At expires_at the session is no longer listed.
  listed = stores_.sessions->ListUserSessions(alice, now + 10);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(TokenHashes(*listed),
            (std::vector<std::string>{oldest.token_hash, middle.token_hash, newest.token_hash}));

  listed = stores_.sessions->ListUserSessions(alice, now + 4000);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(TokenHashes(*listed), std::vector<std::string>{middle.token_hash});

  listed = stores_.sessions->ListUserSessions(NewUuid(), now);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_TRUE(listed->empty());
}

TEST_P(StoreContractTest, DeleteUserSessionsRemovesAllOfThatUserOnly) {
  int64_t now = WallNow();
  std::string alice = NewUuid();
  std::string bob = NewUuid();
  std::vector<Session> alices = {MakeSession(alice, now, now + 3600),
                                 MakeSession(alice, now + 1, now + 3600),
                                 MakeSession(alice, now + 2, now + 5)};
  Session bobs = MakeSession(bob, now, now + 3600);
  for (const Session& s : alices) ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(s)));
  ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(bobs)));

  // Counted as of the end of all three, one of them already expired at that point.
  Result<int> deleted = stores_.sessions->DeleteUserSessions(alice);
  ASSERT_TRUE(IsOk(deleted));
  EXPECT_EQ(*deleted, 3);
  for (const Session& s : alices) {
    EXPECT_TRUE(IsError(stores_.sessions->GetSession(s.token_hash, now), ErrorCode::kNotFound));
  }
  Result<std::vector<Session>> listed = stores_.sessions->ListUserSessions(alice, now);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_TRUE(listed->empty());
  EXPECT_TRUE(IsOk(stores_.sessions->GetSession(bobs.token_hash, now)));

  deleted = stores_.sessions->DeleteUserSessions(alice);
  ASSERT_TRUE(IsOk(deleted));
  EXPECT_EQ(*deleted, 0);
}

TEST_P(StoreContractTest, PurgeExpiredRemovesOnlyExpiredSessionsAndCountsThem) {
  int64_t now = WallNow();
  std::string alice = NewUuid();
  Session a = MakeSession(alice, now, now + 10);
  Session b = MakeSession(alice, now, now + 20);
  Session c = MakeSession(NewUuid(), now, now + 20);
  Session live = MakeSession(alice, now, now + 1000);
  for (const Session* s : {&a, &b, &c, &live}) {
    ASSERT_TRUE(IsOk(stores_.sessions->CreateSession(*s)));
  }

  Result<int> purged = stores_.sessions->PurgeExpired(now + 20);  // expires_at == now counts
  ASSERT_TRUE(IsOk(purged));
  EXPECT_EQ(*purged, 3);
  purged = stores_.sessions->PurgeExpired(now + 20);
  ASSERT_TRUE(IsOk(purged));
  EXPECT_EQ(*purged, 0);

  EXPECT_TRUE(IsOk(stores_.sessions->GetSession(live.token_hash, now + 20)));
  Result<std::vector<Session>> listed = stores_.sessions->ListUserSessions(alice, now);
  ASSERT_TRUE(IsOk(listed));
  EXPECT_EQ(TokenHashes(*listed), std::vector<std::string>{live.token_hash});
  // Purged sessions are gone from the per-user index too.
  Result<int> deleted = stores_.sessions->DeleteUserSessions(alice);
  ASSERT_TRUE(IsOk(deleted));
  EXPECT_EQ(*deleted, 1);
}

TEST_P(StoreContractTest, ConcurrentSessionWritersAreAllDurableAndReadable) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  int64_t now = WallNow();
  std::string shared_user = NewUuid();
  std::vector<std::vector<Session>> created(kThreads);
  std::vector<std::string> failures;
  std::mutex failures_mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Half go to one user (a contended index), half to the thread's own.
        Session s = MakeSession(i % 2 == 0 ? shared_user : "user-" + std::to_string(t), now + i,
                                now + 3600);
        s.roles = {"r" + std::to_string(t), "n" + std::to_string(i)};
        Status status = stores_.sessions->CreateSession(s);
        if (!status.ok()) {
          std::lock_guard lock(failures_mu);
          failures.push_back(status.error().message());
          continue;
        }
        created[t].push_back(std::move(s));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();

  std::set<std::string> shared_expected;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(created[t].size(), static_cast<size_t>(kPerThread));
    for (const Session& s : created[t]) {
      Result<Session> got = stores_.sessions->GetSession(s.token_hash, now);
      ASSERT_TRUE(IsOk(got));
      ExpectSameSession(s, *got);
      if (s.user_id == shared_user) shared_expected.insert(s.token_hash);
    }
    Result<std::vector<Session>> own =
        stores_.sessions->ListUserSessions("user-" + std::to_string(t), now);
    ASSERT_TRUE(IsOk(own));
    EXPECT_EQ(own->size(), static_cast<size_t>(kPerThread / 2));
  }
  Result<std::vector<Session>> shared = stores_.sessions->ListUserSessions(shared_user, now);
  ASSERT_TRUE(IsOk(shared));
  std::vector<std::string> hashes = TokenHashes(*shared);
  EXPECT_EQ(std::set<std::string>(hashes.begin(), hashes.end()), shared_expected);
  for (size_t i = 1; i < shared->size(); ++i) {
    EXPECT_LE((*shared)[i - 1].created_at, (*shared)[i].created_at);
  }
}

TEST_P(StoreContractTest, ConcurrentReadersAndWritersAcrossAllStores) {
  // Users, grants, configuration and sessions from several threads at once.
  constexpr int kThreads = 6;
  constexpr int kRounds = 15;
  int64_t now = WallNow();
  ASSERT_TRUE(IsOk(stores_.roles->CreateRole(MakeRole("member"))));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        std::string name = "u" + std::to_string(t) + "-" + std::to_string(i);
        User user = MakeUser(name, now);
        bool ok =
            stores_.users->CreateUser(user).ok() &&
            stores_.roles->GrantRole(user.id, "member").ok() &&
            stores_.config->PutConfig({"k" + std::to_string(t), std::to_string(i), now}).ok() &&
            stores_.sessions->CreateSession(MakeSession(user.id, now, now + 60)).ok() &&
            stores_.users->GetUserByUsername(name).ok() && stores_.users->ListUsers().ok();
        if (!ok) ++errors;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);

  Result<std::vector<User>> users = stores_.users->ListUsers();
  ASSERT_TRUE(IsOk(users));
  ASSERT_EQ(users->size(), static_cast<size_t>(kThreads * kRounds));
  for (const User& user : *users) {
    Result<std::vector<std::string>> roles = stores_.roles->ListUserRoles(user.id);
    ASSERT_TRUE(IsOk(roles));
    EXPECT_EQ(*roles, std::vector<std::string>{"member"});
  }
  Result<std::vector<ConfigEntry>> config = stores_.config->ListConfig();
  ASSERT_TRUE(IsOk(config));
  ASSERT_EQ(config->size(), static_cast<size_t>(kThreads));
  for (const ConfigEntry& entry : *config) EXPECT_EQ(entry.value_json, std::to_string(kRounds - 1));
}

// --- SigningKeyStore -------------------------------------------------------------

SigningKeyRecord MakeKey(const std::string& kid, KeyState state, int64_t created_at) {
  SigningKeyRecord key;
  key.kid = kid;
  key.algorithm = "ES256";
  key.private_key =
      "-----BEGIN PRIVATE KEY-----\nsealed 'quoted' \\ text\n-----END PRIVATE KEY-----\n";
  key.public_jwk = R"({"kty":"EC","crv":"P-256","x":"eA","y":"eQ","kid":")" + kid + R"("})";
  key.state = state;
  key.created_at = created_at;
  key.activated_at = state == KeyState::kNext ? created_at + 300 : created_at;
  return key;
}

TEST_P(StoreContractTest, SigningKeysRoundTripVerbatimAndListInCreationOrder) {
  const int64_t now = WallNow();
  SigningKeyRecord a = MakeKey("kid-a", KeyState::kActive, now - 10);
  SigningKeyRecord b = MakeKey("kid-b", KeyState::kNext, now);
  b.algorithm = "EdDSA";
  SigningKeyRecord c = MakeKey("kid-c", KeyState::kRetired, now - 20);
  c.retired_at = now - 10;
  c.expires_at = now + 400;
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(a)));
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(b)));
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(c)));
  EXPECT_TRUE(
      IsError(stores_.signing_keys->CreateSigningKey(MakeKey("kid-a", KeyState::kRetired, now)),
              ErrorCode::kAlreadyExists));

  Result<SigningKeyRecord> got = stores_.signing_keys->GetSigningKey("kid-b");
  ASSERT_TRUE(IsOk(got));
  EXPECT_EQ(*got, b);
  EXPECT_TRUE(IsError(stores_.signing_keys->GetSigningKey("kid-x"), ErrorCode::kNotFound));

  Result<std::vector<SigningKeyRecord>> all = stores_.signing_keys->ListSigningKeys();
  ASSERT_TRUE(IsOk(all));
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0], c);
  EXPECT_EQ((*all)[1], a);
  EXPECT_EQ((*all)[2], b);

  EXPECT_TRUE(IsOk(stores_.signing_keys->DeleteSigningKey("kid-c")));
  EXPECT_TRUE(IsOk(stores_.signing_keys->DeleteSigningKey("kid-c")));  // idempotent
  EXPECT_TRUE(IsError(stores_.signing_keys->GetSigningKey("kid-c"), ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, AtMostOneActiveAndOneNextSigningKey) {
  const int64_t now = WallNow();
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("a1", KeyState::kActive, now))));
  EXPECT_TRUE(IsError(stores_.signing_keys->CreateSigningKey(MakeKey("a2", KeyState::kActive, now)),
                      ErrorCode::kAlreadyExists));
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("n1", KeyState::kNext, now))));
  EXPECT_TRUE(IsError(stores_.signing_keys->CreateSigningKey(MakeKey("n2", KeyState::kNext, now)),
                      ErrorCode::kAlreadyExists));
  // Retired keys are not limited.
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("r1", KeyState::kRetired, now))));
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("r2", KeyState::kRetired, now))));
  // Promoting next while another key is active is refused.
  EXPECT_TRUE(IsError(
      stores_.signing_keys->UpdateSigningKeyState("n1", KeyState::kNext, KeyState::kActive, now, 0),
      ErrorCode::kAlreadyExists));
  Result<SigningKeyRecord> n1 = stores_.signing_keys->GetSigningKey("n1");
  ASSERT_TRUE(IsOk(n1));
  EXPECT_EQ(n1->state, KeyState::kNext);
}

TEST_P(StoreContractTest, SigningKeyStateIsCompareAndSet) {
  const int64_t now = WallNow();
  ASSERT_TRUE(
      IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("old", KeyState::kActive, now - 100))));
  ASSERT_TRUE(
      IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("new", KeyState::kNext, now - 50))));

  Result<bool> retired = stores_.signing_keys->UpdateSigningKeyState(
      "old", KeyState::kActive, KeyState::kRetired, now, now + 360);
  ASSERT_TRUE(IsOk(retired));
  EXPECT_TRUE(*retired);
  // The second replica's attempt finds it no longer active.
  Result<bool> again = stores_.signing_keys->UpdateSigningKeyState(
      "old", KeyState::kActive, KeyState::kRetired, now + 1, now + 999);
  ASSERT_TRUE(IsOk(again));
  EXPECT_FALSE(*again);

  Result<bool> promoted = stores_.signing_keys->UpdateSigningKeyState("new", KeyState::kNext,
                                                                      KeyState::kActive, now, 0);
  ASSERT_TRUE(IsOk(promoted));
  EXPECT_TRUE(*promoted);

  Result<SigningKeyRecord> old_key = stores_.signing_keys->GetSigningKey("old");
  ASSERT_TRUE(IsOk(old_key));
  EXPECT_EQ(old_key->state, KeyState::kRetired);
  EXPECT_EQ(old_key->retired_at, now);
  EXPECT_EQ(old_key->expires_at, now + 360);
  EXPECT_EQ(old_key->activated_at, now - 100);
  Result<SigningKeyRecord> new_key = stores_.signing_keys->GetSigningKey("new");
  ASSERT_TRUE(IsOk(new_key));
  EXPECT_EQ(new_key->state, KeyState::kActive);
  EXPECT_EQ(new_key->activated_at, now);
  EXPECT_EQ(new_key->expires_at, 0);

  EXPECT_TRUE(IsError(stores_.signing_keys->UpdateSigningKeyState("nope", KeyState::kNext,
                                                                  KeyState::kActive, now, 0),
                      ErrorCode::kNotFound));
}

TEST_P(StoreContractTest, ConcurrentSigningKeyRacesHaveExactlyOneWinner) {
  const int64_t now = WallNow();
  ASSERT_TRUE(IsOk(stores_.signing_keys->CreateSigningKey(MakeKey("cur", KeyState::kActive, now))));
  constexpr int kThreads = 6;
  std::atomic<int> creates{0}, create_conflicts{0}, retires{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Status created = stores_.signing_keys->CreateSigningKey(
          MakeKey("next-" + std::to_string(t), KeyState::kNext, now));
      if (created.ok()) {
        ++creates;
      } else if (created.error().code() == ErrorCode::kAlreadyExists) {
        ++create_conflicts;
      } else {
        ++errors;
      }
      Result<bool> r = stores_.signing_keys->UpdateSigningKeyState(
          "cur", KeyState::kActive, KeyState::kRetired, now, now + 10);
      if (!r.ok()) {
        ++errors;
      } else if (*r) {
        ++retires;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(creates.load(), 1);
  EXPECT_EQ(create_conflicts.load(), kThreads - 1);
  EXPECT_EQ(retires.load(), 1);
}

// --- RevocationStore -------------------------------------------------------------

TEST_P(StoreContractTest, RevokedJtiIsRevokedUntilItsExpiry) {
  const int64_t now = WallNow();
  const std::string jti = RandomHex(32);
  Result<bool> before = stores_.revocations->IsJtiRevoked(jti, now);
  ASSERT_TRUE(IsOk(before));
  EXPECT_FALSE(*before);

  ASSERT_TRUE(IsOk(stores_.revocations->RevokeJti(jti, now + 300)));
  ASSERT_TRUE(IsOk(stores_.revocations->RevokeJti(jti, now + 100)));  // idempotent; later wins
  Result<bool> during = stores_.revocations->IsJtiRevoked(jti, now + 200);
  ASSERT_TRUE(IsOk(during));
  EXPECT_TRUE(*during);
  Result<bool> after = stores_.revocations->IsJtiRevoked(jti, now + 300);
  ASSERT_TRUE(IsOk(after));
  EXPECT_FALSE(*after);
  Result<bool> other = stores_.revocations->IsJtiRevoked(RandomHex(32), now);
  ASSERT_TRUE(IsOk(other));
  EXPECT_FALSE(*other);
}

TEST_P(StoreContractTest, PurgeExpiredRevocationsKeepsLiveOnes) {
  const int64_t now = WallNow();
  const std::string live = RandomHex(32);
  const std::string dead = RandomHex(32);
  ASSERT_TRUE(IsOk(stores_.revocations->RevokeJti(live, now + 600)));
  ASSERT_TRUE(IsOk(stores_.revocations->RevokeJti(dead, now + 5)));
  Result<int> purged = stores_.revocations->PurgeExpiredRevocations(now + 10);
  ASSERT_TRUE(IsOk(purged));
  EXPECT_LE(*purged, 1);
  Result<bool> still = stores_.revocations->IsJtiRevoked(live, now + 10);
  ASSERT_TRUE(IsOk(still));
  EXPECT_TRUE(*still);
  Result<bool> gone = stores_.revocations->IsJtiRevoked(dead, now + 10);
  ASSERT_TRUE(IsOk(gone));
  EXPECT_FALSE(*gone);
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Stores, StoreContractTest, ::testing::ValuesIn(StoreBackends()),
                         BackendName);
// A build may register no back-end at all (for example only remote ones, disabled).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StoreContractTest);

}  // namespace bulwark::testing
