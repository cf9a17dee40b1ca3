// An in-memory implementation of every store contract, for unit tests of the
// services, with fault injection: while `unavailable` is set every call fails
// with kUnavailable, as a store that cannot be reached would.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "storage/stores.hpp"

namespace bulwark::testing {

class MemoryStore final : public UserStore,
                          public RoleStore,
                          public ConfigStore,
                          public SessionStore,
                          public SigningKeyStore,
                          public RevocationStore,
                          public HealthProbe {
 public:
  std::atomic<bool> unavailable{false};

  Status CreateUser(const User& user) override;
  Result<User> GetUserById(const std::string& id) override;
  Result<User> GetUserByUsername(const std::string& username) override;
  Result<std::vector<User>> ListUsers() override;
  Status UpdatePasswordHash(const std::string& id, const std::string& hash, int64_t now) override;
  Status SetDisabled(const std::string& id, bool disabled, int64_t now) override;
  Status UpdateEmail(const std::string& id, const std::string& email, int64_t now) override;
  Status DeleteUser(const std::string& id) override;

  Status CreateRole(const Role& role) override;
  Result<Role> GetRoleByName(const std::string& name) override;
  Result<std::vector<Role>> ListRoles() override;
  Status DeleteRole(const std::string& name) override;
  Status GrantRole(const std::string& user_id, const std::string& role_name) override;
  Status RevokeRole(const std::string& user_id, const std::string& role_name) override;
  Result<std::vector<std::string>> ListUserRoles(const std::string& user_id) override;

  Result<ConfigEntry> GetConfig(const std::string& key) override;
  Status PutConfig(const ConfigEntry& entry) override;
  Status DeleteConfig(const std::string& key) override;
  Result<std::vector<ConfigEntry>> ListConfig() override;

  Status CreateSession(const Session& session) override;
  Result<Session> GetSession(const std::string& token_hash, int64_t now) override;
  Status TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) override;
  Status DeleteSession(const std::string& token_hash) override;
  Result<std::vector<Session>> ListUserSessions(const std::string& user_id, int64_t now) override;
  Result<int> DeleteUserSessions(const std::string& user_id) override;
  Result<int> PurgeExpired(int64_t now) override;

  Status CreateSigningKey(const SigningKeyRecord& key) override;
  Result<std::vector<SigningKeyRecord>> ListSigningKeys() override;
  Result<SigningKeyRecord> GetSigningKey(const std::string& kid) override;
  Result<bool> UpdateSigningKeyState(const std::string& kid, KeyState from, KeyState to,
                                     int64_t now, int64_t expires_at) override;
  Status DeleteSigningKey(const std::string& kid) override;

  Status RevokeJti(const std::string& jti, int64_t expires_at) override;
  Result<bool> IsJtiRevoked(const std::string& jti, int64_t now) override;
  Result<int> PurgeExpiredRevocations(int64_t now) override;

  Status Ping() override;

  // A Stores whose members all point at `store`.
  static Stores AsStores(const std::shared_ptr<MemoryStore>& store);

 private:
  Error Down() const { return Error::Unavailable("memory store marked unavailable"); }

  std::mutex mutex_;
  std::map<std::string, User> users_;                     // by id
  std::map<std::string, Role> roles_;                     // by name
  std::set<std::pair<std::string, std::string>> grants_;  // (user_id, role name)
  std::map<std::string, ConfigEntry> config_;
  std::map<std::string, Session> sessions_;               // by token hash
  std::map<std::string, SigningKeyRecord> signing_keys_;  // by kid
  std::map<std::string, int64_t> revoked_jtis_;           // jti -> expires_at
};

}  // namespace bulwark::testing
