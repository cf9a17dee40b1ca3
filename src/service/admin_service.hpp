// Administration use cases: users, roles, grants, configuration, sessions.
// Shared by the HTTP admin API and the `bulwark user|role` commands.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "crypto/password_hasher.hpp"
#include "domain/model.hpp"
#include "storage/config_store.hpp"
#include "storage/session_store.hpp"
#include "storage/user_store.hpp"

namespace bulwark {

struct NewUser {
  std::string username;
  std::string password;  // never logged
  std::string email;
  std::vector<std::string> roles;  // role names; missing roles are created
};

struct UserUpdate {
  std::optional<std::string> email;
  std::optional<bool> disabled;
  std::optional<std::string> password;  // never logged
};

// A user as shown to administrators: no password hash.
struct UserView {
  User user;
  std::vector<std::string> roles;
};

// Minimum password length for accounts created or changed through this service.
inline constexpr std::size_t kMinPasswordBytes = 8;

// Thread-safe. Calls that take a password hash it: run them on the hashing pool.
class AdminService {
 public:
  AdminService(UserStore& users, RoleStore& roles, ConfigStore& config, SessionStore& sessions,
               const PasswordHasher& hasher, const Clock& clock);

  // kInvalidArgument (bad username/password/email), kAlreadyExists.
  Result<UserView> CreateUser(const NewUser& request);
  Result<UserView> GetUser(const std::string& id);
  Result<UserView> GetUserByUsername(const std::string& username);
  Result<std::vector<UserView>> ListUsers();
  // Disabling a user or changing the password ends all of the user's sessions.
  Result<UserView> UpdateUser(const std::string& id, const UserUpdate& update);
  // Deletes the user and ends all of the user's sessions.
  Status DeleteUser(const std::string& id);

  // kInvalidArgument for a bad name or permissions that are not a JSON array.
  Result<Role> CreateRole(const std::string& name, const std::string& permissions_json);
  Result<std::vector<Role>> ListRoles();
  Status DeleteRole(const std::string& name);
  Status GrantRole(const std::string& user_id, const std::string& role_name);
  Status RevokeRole(const std::string& user_id, const std::string& role_name);

  Result<ConfigEntry> GetConfig(const std::string& key);
  Result<std::vector<ConfigEntry>> ListConfig();
  // value_json must be valid JSON (the caller parses it).
  Result<ConfigEntry> PutConfig(const std::string& key, const std::string& value_json);
  Status DeleteConfig(const std::string& key);

  Result<std::vector<Session>> ListUserSessions(const std::string& user_id);
  // Returns how many sessions ended.
  Result<int> RevokeUserSessions(const std::string& user_id);

 private:
  Result<UserView> View(User user);
  Status EnsureRole(const std::string& name);

  UserStore& users_;
  RoleStore& roles_;
  ConfigStore& config_;
  SessionStore& sessions_;
  const PasswordHasher& hasher_;
  const Clock& clock_;
};

// Names: 1-64 characters of [A-Za-z0-9._@-] for usernames, [A-Za-z0-9._:-] for
// roles and configuration keys.
bool IsValidUsername(const std::string& name);
bool IsValidRoleName(const std::string& name);
bool IsValidConfigKey(const std::string& key);

}  // namespace bulwark
