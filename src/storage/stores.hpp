// The set of stores a running Bulwark uses, built by app/ from configuration.
#pragma once

#include <memory>
#include <string>

#include "core/result.hpp"
#include "storage/client_store.hpp"
#include "storage/config_store.hpp"
#include "storage/login_store.hpp"
#include "storage/refresh_token_store.hpp"
#include "storage/revocation_store.hpp"
#include "storage/session_store.hpp"
#include "storage/signing_key_store.hpp"
#include "storage/user_store.hpp"

namespace bulwark {

// A back-end that can report whether it answers (for /health).
class HealthProbe {
 public:
  virtual ~HealthProbe() = default;
  // Blocking; OK when the back-end answers a trivial query.
  virtual Status Ping() = 0;
};

struct Stores {
  std::shared_ptr<UserStore> users;
  std::shared_ptr<RoleStore> roles;
  std::shared_ptr<ConfigStore> config;
  std::shared_ptr<SessionStore> sessions;
  // OAuth clients (always the relational store).
  std::shared_ptr<ClientStore> clients;
  // Refresh-token families: Redis when configured, else the relational store.
  std::shared_ptr<RefreshTokenStore> refresh_tokens;
  // Session + refresh family of a login in one write: the relational store
  // itself, or a SequentialLoginStore over `sessions` and `refresh_tokens`.
  std::shared_ptr<LoginStore> logins;
  // Access-token signing keys (always the relational store).
  std::shared_ptr<SigningKeyStore> signing_keys;
  // Revoked access-token ids: Redis when configured, else the relational store.
  std::shared_ptr<RevocationStore> revocations;
  // Health of the relational store (users, roles, configuration).
  std::shared_ptr<HealthProbe> database;
  // Health of the session store; may be the same object as `database`.
  std::shared_ptr<HealthProbe> session_backend;
  std::string database_kind;  // "sqlite", "postgres"
  std::string session_kind;   // "sqlite", "postgres", "redis"
  // Where a session lives: "sqlite", "postgres", "redis", or "redis+postgres" /
  // "redis+sqlite" when Redis writes through to the relational store.
  std::string session_durability;
};

}  // namespace bulwark
