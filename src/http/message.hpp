// Transport-neutral request/response records. Handlers see only these, so
// they are unit-testable without sockets and carry no Beast headers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bulwark::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // upper-case token, e.g. "GET"
  std::string target;  // as received, e.g. "/v1/admin/users?x=1"
  std::string path;    // target without the query string
  std::string query;   // without the leading '?'
  HeaderList headers;  // as received (names in original case)
  std::string body;
  std::string remote_address;  // peer IP address, text form
  std::string request_id;      // X-Request-Id from the request, or generated
  std::unordered_map<std::string, std::string> path_params;  // filled by the Router

  // Case-insensitive lookup of the first header with this name; nullptr when absent.
  const std::string* Header(std::string_view name) const;
  // Value of a cookie from the Cookie header(s); nullopt when absent.
  std::optional<std::string> Cookie(std::string_view name) const;
  // The token of "Authorization: Bearer <token>"; nullopt when absent or another scheme.
  std::optional<std::string> BearerToken() const;
};

struct HttpResponse {
  int status = 200;
  HeaderList headers;  // Content-Type defaults to application/json when a body is set
  std::string body;

  void SetHeader(std::string name, std::string value);
  const std::string* Header(std::string_view name) const;

  static HttpResponse Json(int status, std::string json_body);
  // {"error": code, "message": message}
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  static HttpResponse NoContent();
};

// Case-insensitive ASCII equality, for header names.
bool HeaderNameEquals(std::string_view a, std::string_view b);

}  // namespace bulwark::http
