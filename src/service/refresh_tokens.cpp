#include "service/refresh_tokens.hpp"

#include <algorithm>

#include "crypto/tokens.hpp"

namespace bulwark {

NewRefreshToken MakeRefreshFamily(const Session& session, const std::string& client_id, int64_t now,
                                  const RefreshTokenLifetimes& lifetimes) {
  NewRefreshToken out;
  RefreshFamily& f = out.family;
  f.family_id = Base64UrlEncode(RandomHex(16));  // 32 hex chars -> 43 url-safe chars
  f.user_id = session.user_id;
  f.client_id = client_id;
  f.session_hash = session.token_hash;
  out.token = f.family_id + "." + NewSessionToken();
  f.current_hash = Sha256Hex(out.token);
  f.created_at = now;
  f.rotated_at = now;
  f.absolute_expires_at = now + lifetimes.absolute_ttl_seconds;
  f.idle_expires_at = std::min(now + lifetimes.idle_ttl_seconds, f.absolute_expires_at);
  return out;
}

std::string RefreshFamilyIdOf(std::string_view token) {
  std::size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 >= token.size()) return "";
  if (token.find('.', dot + 1) != std::string_view::npos) return "";  // a JWT has two dots
  std::string_view family = token.substr(0, dot);
  for (char c : token) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return "";
  }
  return std::string(family);
}

}  // namespace bulwark
