// Refresh tokens (SPEC §3): "<family_id>.<secret>", opaque to clients, only
// their SHA-256 stored. Shared by logins (AuthService) and the OAuth grants.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "domain/model.hpp"
#include "storage/refresh_token_store.hpp"

namespace bulwark {

struct RefreshTokenLifetimes {
  int64_t idle_ttl_seconds = 24 * 3600;           // unused this long: gone
  int64_t absolute_ttl_seconds = 30 * 24 * 3600;  // never valid longer, however used
  int64_t grace_seconds = 10;  // the replaced token still re-issues (a lost response)
};

struct NewRefreshToken {
  std::string token;     // returned once, to the client
  RefreshFamily family;  // generation 0, to be stored
};

// A new family bound to `session` and `client_id` ("" for first-party logins).
NewRefreshToken MakeRefreshFamily(const Session& session, const std::string& client_id, int64_t now,
                                  const RefreshTokenLifetimes& lifetimes);

// "<family_id>.<secret>" -> family id; empty when the shape is wrong.
std::string RefreshFamilyIdOf(std::string_view refresh_token);

}  // namespace bulwark
