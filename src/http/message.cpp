#include "http/message.hpp"

#include <algorithm>

#include "core/json_escape.hpp"

namespace bulwark::http {
namespace {

constexpr std::string_view kWhitespace = " \t";

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view Trim(std::string_view s) {
  const std::size_t begin = s.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  const std::size_t end = s.find_last_not_of(kWhitespace);
  return s.substr(begin, end - begin + 1);
}

const std::string* FindHeader(const HeaderList& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (HeaderNameEquals(key, name)) return &value;
  }
  return nullptr;
}

}  // namespace

bool HeaderNameEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

const std::string* HttpRequest::Header(std::string_view name) const {
  return FindHeader(headers, name);
}

std::optional<std::string> HttpRequest::Cookie(std::string_view name) const {
  if (name.empty()) return std::nullopt;
  // A client may split cookies over several Cookie fields; the first match wins.
  for (const auto& [key, value] : headers) {
    if (!HeaderNameEquals(key, "Cookie")) continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      const std::size_t semicolon = rest.find(';');
      const std::string_view pair = rest.substr(0, semicolon);
      rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
      const std::size_t equals = pair.find('=');
      if (equals == std::string_view::npos) continue;
      if (Trim(pair.substr(0, equals)) != name) continue;
      std::string_view cookie_value = Trim(pair.substr(equals + 1));
      // RFC 6265 allows the value to be wrapped in double quotes.
      if (cookie_value.size() >= 2 && cookie_value.front() == '"' && cookie_value.back() == '"') {
        cookie_value = cookie_value.substr(1, cookie_value.size() - 2);
      }
      return std::string(cookie_value);
    }
  }
  return std::nullopt;
}

std::optional<std::string> HttpRequest::BearerToken() const {
  const std::string* authorization = Header("Authorization");
  if (authorization == nullptr) return std::nullopt;
  const std::string_view value = Trim(*authorization);
  constexpr std::string_view kScheme = "Bearer";
  if (value.size() <= kScheme.size() || !HeaderNameEquals(value.substr(0, kScheme.size()), kScheme))
    return std::nullopt;
  const char separator = value[kScheme.size()];
  if (separator != ' ' && separator != '\t') return std::nullopt;  // e.g. "BearerX"
  const std::string_view token = Trim(value.substr(kScheme.size()));
  // A token68 never contains whitespace; reject rather than guess which part is meant.
  // (A loop, not find_first_of: that calls memchr once per character of a long JWT.)
  if (token.empty() ||
      std::any_of(token.begin(), token.end(), [](char c) { return c == ' ' || c == '\t'; })) {
    return std::nullopt;
  }
  return std::string(token);
}

void HttpResponse::SetHeader(std::string name, std::string value) {
  auto it = headers.begin();
  while (it != headers.end() && !HeaderNameEquals(it->first, name)) ++it;
  if (it == headers.end()) {
    headers.emplace_back(std::move(name), std::move(value));
    return;
  }
  it->second = std::move(value);
  // "Set" means exactly one field with this name remains.
  for (auto next = it + 1; next != headers.end();) {
    next = HeaderNameEquals(next->first, it->first) ? headers.erase(next) : next + 1;
  }
}

const std::string* HttpResponse::Header(std::string_view name) const {
  return FindHeader(headers, name);
}

HttpResponse HttpResponse::Json(int status, std::string json_body) {
  HttpResponse response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = std::move(json_body);
  return response;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message) {
  // Invalid UTF-8 becomes U+FFFD, so the body stays parseable whatever a
  // caller passes as the message.
  std::string body;
  body.reserve(code.size() + message.size() + 32);
  body += "{\"error\":";
  AppendJsonString(body, code);
  body += ",\"message\":";
  AppendJsonString(body, message);
  body += '}';
  return Json(status, std::move(body));
}

HttpResponse HttpResponse::NoContent() {
  HttpResponse response;
  response.status = 204;
  return response;
}

}  // namespace bulwark::http
