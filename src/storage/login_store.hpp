// LoginStore: what a successful login writes, the session and the
// refresh-token family bound to it, both or neither. The relational back-ends
// (SQLite, PostgreSQL) write both in one transaction: one commit, one fsync
// per login. SequentialLoginStore serves the split set-ups (sessions in
// Redis, families in the relational store or in Redis).
#pragma once

#include <memory>
#include <utility>

#include "core/result.hpp"
#include "domain/model.hpp"
#include "storage/refresh_token_store.hpp"
#include "storage/session_store.hpp"

namespace bulwark {

// Thread-safe, blocking; see UserStore for the kUnavailable rule.
class LoginStore {
 public:
  virtual ~LoginStore() = default;
  LoginStore() = default;
  LoginStore(const LoginStore&) = delete;
  LoginStore& operator=(const LoginStore&) = delete;

  // Creates both. kAlreadyExists when either key collides; then neither is
  // left behind.
  virtual Status CreateLogin(const Session& session, const RefreshFamily& family) = 0;
};

// The session, then the family; when the family cannot be written the
// session is deleted again (best effort: a session without its family only
// lacks a refresh token until it expires or is logged out).
class SequentialLoginStore final : public LoginStore {
 public:
  SequentialLoginStore(std::shared_ptr<SessionStore> sessions,
                       std::shared_ptr<RefreshTokenStore> families)
      : sessions_(std::move(sessions)), families_(std::move(families)) {}

  Status CreateLogin(const Session& session, const RefreshFamily& family) override {
    if (Status st = sessions_->CreateSession(session); !st.ok()) return st;
    Status st = families_->CreateFamily(family);
    if (!st.ok()) (void)sessions_->DeleteSession(session.token_hash);
    return st;
  }

 private:
  std::shared_ptr<SessionStore> sessions_;
  std::shared_ptr<RefreshTokenStore> families_;
};

}  // namespace bulwark
