// An access token for the application itself, from Bulwark's OAuth2 token
// endpoint with the client_credentials grant (RFC 6749 §4.4), renewed before
// it expires. Thread-safe; concurrent callers share one grant request.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "bulwark/client/client.hpp"

namespace bulwark::client {

struct ClientCredentialsOptions {
  std::string client_id;
  std::string client_secret;
  std::string scope;  // empty: not sent
  // client_secret_basic (RFC 6749 §2.3.1, which every server must support);
  // false: client_secret_post (id and secret in the form body).
  bool basic_auth = true;
  // A token is renewed at min(refresh_fraction * lifetime, lifetime - refresh_skew)
  // after it was obtained (the fraction alone when the lifetime is shorter than the skew).
  double refresh_fraction = 0.8;
  std::chrono::seconds refresh_skew{30};
  // After a failed renewal, while the current token is still valid, wait this
  // long before trying again (the current token keeps being handed out).
  std::chrono::milliseconds retry_interval{1000};
  // Test hook (default std::chrono::steady_clock::now).
  std::function<std::chrono::steady_clock::time_point()> now;
};

struct AccessToken {
  Outcome outcome = Outcome::kUnavailable;  // kInvalid: the server refused the client
  std::string token;
  std::string token_type;
  std::chrono::seconds expires_in{0};  // lifetime as granted
  std::chrono::steady_clock::time_point expires_at{};
  std::string error;  // RFC 6749 §5.2 "error" (invalid_client, ...) or why unavailable
};

class ClientCredentialsTokenSource {
 public:
  ClientCredentialsTokenSource(Client& client, ClientCredentialsOptions options);
  ~ClientCredentialsTokenSource();
  ClientCredentialsTokenSource(const ClientCredentialsTokenSource&) = delete;
  ClientCredentialsTokenSource& operator=(const ClientCredentialsTokenSource&) = delete;

  // The current token, renewed first when its refresh point has passed.
  AccessToken Get();
  // Forgets the current token (e.g. a resource server answered 401 to it).
  void Invalidate();
  // When the current token will be renewed (time_point{} when there is none).
  std::chrono::steady_clock::time_point refresh_at() const;
  uint64_t grants() const;  // token requests sent

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::client
