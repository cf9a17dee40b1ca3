// ClientStore: OAuth clients (SPEC §2 `clients`): id, a hash of the secret
// (never the secret), allowed grants and scopes, a registered certificate.
// Implementations: SQLite, PostgreSQL, the memory fake; tests/contract.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace bulwark {

struct OAuthClient {
  std::string id;                   // client_id
  std::string secret_hash;          // e.g. "sha256:<hex>"; a secret-derived value, never logged
  std::vector<std::string> grants;  // "client_credentials", "refresh_token", ...
  std::vector<std::string> scopes;  // scopes it may request
  std::string certificate;          // registered client certificate (PEM), "" for none
  bool disabled = false;
  int64_t created_at = 0;

  bool operator==(const OAuthClient&) const = default;
};

// Thread-safe, blocking; see UserStore for the kUnavailable rule. Grants and
// scopes are tokens without spaces (RFC 6749 §3.3) and keep their order.
class ClientStore {
 public:
  virtual ~ClientStore() = default;
  ClientStore() = default;
  ClientStore(const ClientStore&) = delete;
  ClientStore& operator=(const ClientStore&) = delete;

  // kAlreadyExists when the id is taken; kInvalidArgument for a grant or scope with a space.
  virtual Status CreateClient(const OAuthClient& client) = 0;
  // kNotFound when absent.
  virtual Result<OAuthClient> GetClient(const std::string& id) = 0;
  // Ordered by id.
  virtual Result<std::vector<OAuthClient>> ListClients() = 0;
  // kNotFound when absent.
  virtual Status DeleteClient(const std::string& id) = 0;
};

// Space-separated form used by the relational back-ends, and its inverse.
std::string JoinTokens(const std::vector<std::string>& tokens);
std::vector<std::string> SplitTokens(const std::string& joined);
// kInvalidArgument when a grant or scope is empty or contains whitespace.
Status CheckClientTokens(const OAuthClient& client);

}  // namespace bulwark
