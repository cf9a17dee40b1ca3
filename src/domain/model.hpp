// Plain records shared by the stores and the services. No I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bulwark {

struct User {
  std::string id;  // UUID v4, lower-case text
  std::string username;
  std::string email;
  std::string password_hash;  // Argon2id PHC string; never logged
  bool disabled = false;
  int64_t created_at = 0;  // Unix seconds
  int64_t last_modified = 0;
};

struct Role {
  std::string id;  // UUID v4
  std::string name;
  std::string permissions_json = "[]";  // a JSON document, stored verbatim
};

struct ConfigEntry {
  std::string key;
  std::string value_json;  // a JSON document, stored verbatim
  int64_t last_modified = 0;
};

// A server-side session. The token itself is never stored: only token_hash
// (hex SHA-256 of the token), so a dump of the store yields no usable token.
struct Session {
  std::string token_hash;
  std::string user_id;
  std::string username;
  std::vector<std::string> roles;
  int64_t created_at = 0;
  int64_t expires_at = 0;
  std::string client;
  std::string ip;
  std::string user_agent;
};

inline constexpr const char* kAdminRole = "admin";

}  // namespace bulwark
