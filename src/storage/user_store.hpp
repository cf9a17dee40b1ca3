// UserStore: users, roles, user_roles. Implementations: storage/sqlite (now),
// storage/postgres (next). Every implementation passes tests/contract.
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "domain/model.hpp"

namespace bulwark {

// All methods are thread-safe and blocking: call them from a worker pool,
// never from an I/O thread. Any method may fail with kUnavailable when the
// back-end cannot be reached or stays busy; callers must not treat that as
// "not found".
class UserStore {
 public:
  virtual ~UserStore() = default;
  UserStore() = default;
  UserStore(const UserStore&) = delete;
  UserStore& operator=(const UserStore&) = delete;

  // kAlreadyExists when the username (or id) is taken.
  virtual Status CreateUser(const User& user) = 0;
  // kNotFound when absent.
  virtual Result<User> GetUserById(const std::string& id) = 0;
  virtual Result<User> GetUserByUsername(const std::string& username) = 0;
  // Ordered by username.
  virtual Result<std::vector<User>> ListUsers() = 0;
  // kNotFound when absent. Updates last_modified to `now`.
  virtual Status UpdatePasswordHash(const std::string& id, const std::string& password_hash,
                                    int64_t now) = 0;
  virtual Status SetDisabled(const std::string& id, bool disabled, int64_t now) = 0;
  virtual Status UpdateEmail(const std::string& id, const std::string& email, int64_t now) = 0;
  // Deletes the user and their role grants. kNotFound when absent.
  virtual Status DeleteUser(const std::string& id) = 0;
};

class RoleStore {
 public:
  virtual ~RoleStore() = default;
  RoleStore() = default;
  RoleStore(const RoleStore&) = delete;
  RoleStore& operator=(const RoleStore&) = delete;

  // kAlreadyExists when the name is taken.
  virtual Status CreateRole(const Role& role) = 0;
  virtual Result<Role> GetRoleByName(const std::string& name) = 0;
  // Ordered by name.
  virtual Result<std::vector<Role>> ListRoles() = 0;
  // Deletes the role and every grant of it. kNotFound when absent.
  virtual Status DeleteRole(const std::string& name) = 0;
  // Idempotent. kNotFound when the user or the role does not exist.
  virtual Status GrantRole(const std::string& user_id, const std::string& role_name) = 0;
  // Idempotent. kNotFound when the user or the role does not exist.
  virtual Status RevokeRole(const std::string& user_id, const std::string& role_name) = 0;
  // Role names of the user, ordered by name (empty for an unknown user).
  virtual Result<std::vector<std::string>> ListUserRoles(const std::string& user_id) = 0;
};

}  // namespace bulwark
