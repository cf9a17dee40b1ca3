// PostgresStore: every store contract over one PostgreSQL database. Internal
// to storage/postgres (and its tests); everyone else uses OpenPostgresStores()
// and the interfaces.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "resilience/circuit_breaker.hpp"
#include "storage/login_store.hpp"
#include "storage/postgres/pg_connection.hpp"
#include "storage/postgres/postgres_store.hpp"
#include "storage/stores.hpp"

namespace bulwark {

// Holds no data in memory: every call asks the server, so all replicas see
// the same state. Every method blocks (see postgres_store.hpp).
class PostgresStore final : public UserStore,
                            public RoleStore,
                            public ConfigStore,
                            public SessionStore,
                            public SigningKeyStore,
                            public RevocationStore,
                            public RefreshTokenStore,
                            public ClientStore,
                            public LoginStore,
                            public HealthProbe {
 public:
  PostgresStore(std::unique_ptr<postgres::ConnectionPool> pool, resilience::BreakerOptions breaker,
                metrics::Registry* metrics);

  // UserStore
  Status CreateUser(const User& user) override;
  Result<User> GetUserById(const std::string& id) override;
  Result<User> GetUserByUsername(const std::string& username) override;
  Result<std::vector<User>> ListUsers() override;
  Status UpdatePasswordHash(const std::string& id, const std::string& password_hash,
                            int64_t now) override;
  Status SetDisabled(const std::string& id, bool disabled, int64_t now) override;
  Status UpdateEmail(const std::string& id, const std::string& email, int64_t now) override;
  Status DeleteUser(const std::string& id) override;

  // RoleStore
  Status CreateRole(const Role& role) override;
  Result<Role> GetRoleByName(const std::string& name) override;
  Result<std::vector<Role>> ListRoles() override;
  Status DeleteRole(const std::string& name) override;
  Status GrantRole(const std::string& user_id, const std::string& role_name) override;
  Status RevokeRole(const std::string& user_id, const std::string& role_name) override;
  Result<std::vector<std::string>> ListUserRoles(const std::string& user_id) override;

  // ConfigStore
  Result<ConfigEntry> GetConfig(const std::string& key) override;
  Status PutConfig(const ConfigEntry& entry) override;
  Status DeleteConfig(const std::string& key) override;
  Result<std::vector<ConfigEntry>> ListConfig() override;

  // SessionStore
  Status CreateSession(const Session& session) override;
  Result<Session> GetSession(const std::string& token_hash, int64_t now) override;
  Status TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) override;
  Status DeleteSession(const std::string& token_hash) override;
  Result<std::vector<Session>> ListUserSessions(const std::string& user_id, int64_t now) override;
  Result<int> DeleteUserSessions(const std::string& user_id) override;
  Result<int> PurgeExpired(int64_t now) override;

  // SigningKeyStore
  Status CreateSigningKey(const SigningKeyRecord& key) override;
  Result<std::vector<SigningKeyRecord>> ListSigningKeys() override;
  Result<SigningKeyRecord> GetSigningKey(const std::string& kid) override;
  Result<bool> UpdateSigningKeyState(const std::string& kid, KeyState from, KeyState to,
                                     int64_t now, int64_t expires_at) override;
  Status DeleteSigningKey(const std::string& kid) override;

  // RevocationStore
  Status RevokeJti(const std::string& jti, int64_t expires_at) override;
  Result<bool> IsJtiRevoked(const std::string& jti, int64_t now) override;
  Result<int> PurgeExpiredRevocations(int64_t now) override;

  // ClientStore
  Status CreateClient(const OAuthClient& client) override;
  Result<OAuthClient> GetClient(const std::string& id) override;
  Result<std::vector<OAuthClient>> ListClients() override;
  Status DeleteClient(const std::string& id) override;

  // RefreshTokenStore
  Status CreateFamily(const RefreshFamily& family) override;
  Result<RefreshFamily> GetFamily(const std::string& family_id, int64_t now) override;
  Result<RotateResult> Rotate(const RotateRequest& request) override;
  Status RevokeFamily(const std::string& family_id) override;

  // LoginStore: one statement (a data-modifying CTE), one commit.
  Status CreateLogin(const Session& session, const RefreshFamily& family) override;

  // HealthProbe: SELECT 1 (through the breaker, like every call).
  Status Ping() override;

  resilience::BreakerState breaker_state() const { return breaker_.state(); }
  uint64_t breaker_times_opened() const { return breaker_.times_opened(); }

 private:
  // Runs fn(Connection&) on a pooled connection, guarded by the breaker.
  template <typename Fn>
  auto Run(Fn&& fn) -> decltype(fn(std::declval<postgres::Connection&>()));
  void Report(bool dependency_failure, std::chrono::steady_clock::duration latency);

  Status ChangeGrant(const char* sql, const std::string& user_id, const std::string& role_name);

  std::unique_ptr<postgres::ConnectionPool> pool_;
  resilience::CircuitBreaker breaker_;
  std::optional<resilience::DependencyMetrics> metrics_;
};

}  // namespace bulwark
