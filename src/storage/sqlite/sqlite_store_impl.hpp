// SqliteStore: every store contract over one SQLite database. Internal to
// storage/sqlite; everyone else uses OpenSqliteStores() and the interfaces.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/login_store.hpp"
#include "storage/sqlite/sqlite_connection.hpp"
#include "storage/stores.hpp"

namespace bulwark {

// Holds no data in memory: every call reads the file, so other processes
// sharing it (replicas on one host) are always seen.
class SqliteStore final : public UserStore,
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
  explicit SqliteStore(std::unique_ptr<sqlite::ConnectionPool> pool) : pool_(std::move(pool)) {}
  // Finishes the rotations already queued, then stops their writer thread.
  ~SqliteStore() override;

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

  // RefreshTokenStore (sqlite_refresh_store.cpp)
  Status CreateFamily(const RefreshFamily& family) override;
  Result<RefreshFamily> GetFamily(const std::string& family_id, int64_t now) override;
  Result<RotateResult> Rotate(const RotateRequest& request) override;
  void RotateAsync(RotateRequest request, RotateCallback done) override;
  bool RotatesWithoutBlocking() const override { return true; }
  Status RevokeFamily(const std::string& family_id) override;

  // ClientStore (sqlite_client_store.cpp)
  Status CreateClient(const OAuthClient& client) override;
  Result<OAuthClient> GetClient(const std::string& id) override;
  Result<std::vector<OAuthClient>> ListClients() override;
  Status DeleteClient(const std::string& id) override;

  // LoginStore: one IMMEDIATE transaction, one commit.
  Status CreateLogin(const Session& session, const RefreshFamily& family) override;

  // HealthProbe
  Status Ping() override;

 private:
  // Borrows a connection for the duration of fn(Connection&).
  template <typename Fn>
  auto WithConnection(Fn&& fn) -> decltype(fn(std::declval<sqlite::Connection&>()));

  static Status InsertFamily(sqlite::Connection& conn, const RefreshFamily& family);

  // Grant or revoke under one IMMEDIATE transaction that checks both exist.
  Status ChangeGrant(const char* sql, const std::string& user_id, const std::string& role_name);

  // Group commit of refresh rotations (sqlite_refresh_store.cpp).
  struct PendingRotation {
    RotateRequest request;
    RotateCallback done;
  };
  void RotationWriterLoop();
  std::vector<Result<RotateResult>> RunRotations(const std::vector<PendingRotation>& batch);

  std::unique_ptr<sqlite::ConnectionPool> pool_;
  std::mutex rotation_mutex_;
  std::condition_variable rotation_cv_;
  std::vector<PendingRotation> rotation_queue_;  // GUARDED_BY(rotation_mutex_)
  bool rotation_stopping_ = false;               // GUARDED_BY(rotation_mutex_)
  std::thread rotation_writer_;                  // started by the first rotation
};

}  // namespace bulwark
