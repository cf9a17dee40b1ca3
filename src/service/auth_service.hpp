// Authentication use cases: login, verify, logout. No sockets, no SQL: only
// store contracts, the password hasher and a clock (STYLE §7.9).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "crypto/password_hasher.hpp"
#include "domain/model.hpp"
#include "metrics/registry.hpp"
#include "storage/session_store.hpp"
#include "storage/user_store.hpp"

namespace bulwark {

struct AuthOptions {
  int64_t session_ttl_seconds = 3600;
  // Sliding renewal: a session used after half its lifetime is extended to a full TTL.
  bool session_sliding = false;
};

struct LoginRequest {
  std::string username;
  std::string password;  // never logged
  std::string ip;
  std::string user_agent;
  std::string client;
};

struct LoginResult {
  std::string session_token;  // the only copy; the store keeps its hash
  Session session;
};

// Limits on credential sizes: bounded work per request.
inline constexpr std::size_t kMaxUsernameBytes = 256;
inline constexpr std::size_t kMaxPasswordBytes = 1024;
inline constexpr std::size_t kMaxTokenBytes = 4096;

class AuthService;

// A login between its steps (AuthService::PrepareLogin, CheckPassword,
// CompleteLogin). Callers only carry it from one step to the next.
class LoginAttempt {
 private:
  friend class AuthService;
  LoginRequest request_;
  std::optional<User> user_;             // nullopt: no such username
  bool accepted_ = false;                // CheckPassword accepted the credentials
  std::optional<std::string> new_hash_;  // the password at the current Argon2id parameters
};

// Thread-safe. A login is three steps so that each runs where it belongs:
// PrepareLogin and CompleteLogin use the stores (store pool), CheckPassword
// does the Argon2id work and nothing else (hashing pool). Login runs all three.
class AuthService {
 public:
  AuthService(UserStore& users, RoleStore& roles, SessionStore& sessions,
              const PasswordHasher& hasher, const Clock& clock, metrics::Registry& metrics,
              AuthOptions options);

  // kUnauthorized("invalid credentials") for an unknown user, a wrong password
  // or a disabled account alike, after the same hashing work; kInvalidArgument
  // for oversized input; kUnavailable when a store cannot answer.
  Result<LoginResult> Login(const LoginRequest& request);

  // Step 1 (store): validates sizes (kInvalidArgument) and reads the user
  // (kUnavailable when the store cannot answer). An unknown username is not an
  // error here: CheckPassword still does the same hashing work for it.
  Result<LoginAttempt> PrepareLogin(LoginRequest request);
  // Step 2 (hashing): verifies the password with Argon2id (a dummy hash for an
  // unknown user); kUnauthorized("invalid credentials") for an unknown user, a
  // wrong password or a disabled account alike. Also computes the new hash
  // when the stored one uses other parameters. Forgets the password.
  Status CheckPassword(LoginAttempt& attempt);
  // Step 3 (store): stores the new hash if any (best effort), reads the roles
  // and creates the session; kUnavailable when a store cannot answer,
  // kUnauthorized when CheckPassword did not accept the attempt.
  Result<LoginResult> CompleteLogin(LoginAttempt& attempt);
  // The live session for a token. kUnauthorized when unknown, expired or
  // malformed; kUnavailable when the store cannot answer (never kUnauthorized then).
  Result<Session> Verify(std::string_view token);
  // Ends the session. OK when the token is unknown (idempotent); kUnavailable on store failure.
  Status Logout(std::string_view token);

  const AuthOptions& options() const { return options_; }

 private:
  UserStore& users_;
  RoleStore& roles_;
  SessionStore& sessions_;
  const PasswordHasher& hasher_;
  const Clock& clock_;
  AuthOptions options_;
  metrics::Counter& login_ok_;
  metrics::Counter& login_failed_;
  metrics::Counter& login_error_;
  metrics::Counter& sessions_created_;
  metrics::Counter& rehashes_;
};

// The session-token format: 43 base64url characters (256 bits); anything else
// is rejected before touching a store.
bool LooksLikeSessionToken(std::string_view token);

}  // namespace bulwark
