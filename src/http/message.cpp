#include "http/message.hpp"

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

// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char lead = byte(i);
  std::size_t length = 0;
  unsigned char min_second = 0x80;
  unsigned char max_second = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min_second = 0xA0;  // overlong
    if (lead == 0xED) max_second = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min_second = 0x90;  // overlong
    if (lead == 0xF4) max_second = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  if (byte(i + 1) < min_second || byte(i + 1) > max_second) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// Appends s as a JSON string literal. Invalid UTF-8 becomes U+FFFD so the
// body stays parseable whatever a caller passes as the message.
void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const std::size_t length = Utf8SequenceLength(s, i);
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
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
  if (token.empty() || token.find_first_of(kWhitespace) != std::string_view::npos)
    return std::nullopt;
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
