// Authentication use cases: login, verify, logout. No sockets, no SQL: only
// store contracts, the password hasher and a clock (STYLE §7.9).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "crypto/password_hasher.hpp"
#include "domain/model.hpp"
#include "metrics/registry.hpp"
#include "service/access_token_verifier.hpp"
#include "service/key_service.hpp"
#include "service/refresh_tokens.hpp"
#include "storage/login_store.hpp"
#include "storage/session_store.hpp"
#include "storage/user_store.hpp"

namespace bulwark {

struct AuthOptions {
  int64_t session_ttl_seconds = 3600;
  // Sliding renewal: a session used after half its lifetime is extended to a full TTL.
  bool session_sliding = false;
};

// JWT access tokens (SPEC §3): issued at login, accepted by Verify.
struct AccessTokenOptions {
  std::string issuer;    // "iss"
  std::string audience;  // "aud"; empty: the issuer
  int64_t ttl_seconds = 300;
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
  std::string access_token;  // a JWT; empty when access tokens are not enabled
  int64_t access_token_expires_in = 0;
  std::string refresh_token;  // empty when refresh tokens are not enabled
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
  // and creates the session (with its refresh family, in one write, when
  // refresh tokens are on); kUnavailable when a store cannot answer,
  // kUnauthorized when CheckPassword did not accept the attempt.
  Result<LoginResult> CompleteLogin(LoginAttempt& attempt);
  // Turns on JWT access tokens: CompleteLogin also signs one with the active
  // key, Verify and Logout accept one. Call before serving; `keys` and
  // `verifier` must outlive this service.
  void EnableAccessTokens(KeyService& keys, AccessTokenVerifier& verifier,
                          AccessTokenOptions options);
  // Turns on refresh tokens at login: CompleteLogin writes the session and a
  // refresh family bound to it through `logins` (which must outlive this service).
  void EnableRefreshTokens(LoginStore& logins, RefreshTokenLifetimes lifetimes);

  // The live session for a session token, or the identity of a valid JWT
  // access token (LooksLikeJwt; then token_hash is empty, created_at = iat and
  // expires_at = exp). kUnauthorized when unknown, expired, revoked, tampered
  // or malformed; kUnavailable when a store cannot answer (never kUnauthorized then).
  // A JWT goes through AccessTokenVerifier (cached claims, revoked jtis).
  Result<Session> Verify(std::string_view token);
  // A session token's live session when the store keeps it current in memory
  // and it is not due for renewal (Verify's answer with no round trip and no
  // copy); null otherwise. Never blocks: safe on an I/O thread.
  std::shared_ptr<const Session> KeptSession(std::string_view token);
  // Verify of a JWT whose claims and revocation check are cached; nullopt
  // otherwise. Never blocks: safe on an I/O thread.
  std::optional<Result<Session>> VerifyWithoutBlocking(std::string_view token);
  // Verify of a session token for session stores that answer without
  // blocking (Redis): false when it cannot start that way (a JWT, a store
  // that blocks) — then call Verify from the store pool. Otherwise `done`
  // runs once, on a thread of the store's, with Verify's answer, or with
  // nullopt when Verify must run after all (a miss to check in the durable
  // record, an outage, a sliding renewal that writes).
  using AsyncVerify = std::function<void(std::optional<Result<Session>>)>;
  bool VerifySessionAsync(std::string_view token, AsyncVerify done);
  bool SessionsVerifyWithoutBlocking() const { return sessions_.GetsSessionsWithoutBlocking(); }
  // Ends the session, or revokes a valid JWT's jti until its exp. OK when the
  // token is unknown or invalid (idempotent); kUnavailable on store failure.
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

  Result<std::string> IssueAccessToken(const Session& session, int64_t now);

  KeyService* keys_ = nullptr;
  AccessTokenVerifier* verifier_ = nullptr;
  AccessTokenOptions access_;
  metrics::Counter* access_tokens_issued_ = nullptr;
  LoginStore* logins_ = nullptr;
  RefreshTokenLifetimes refresh_;
  metrics::Registry& metrics_;
};

// The session-token format: 43 base64url characters (256 bits); anything else
// is rejected before touching a store.
bool LooksLikeSessionToken(std::string_view token);
// The shape of a compact JWS: three non-empty base64url parts separated by two dots.
bool LooksLikeJwt(std::string_view token);

}  // namespace bulwark
