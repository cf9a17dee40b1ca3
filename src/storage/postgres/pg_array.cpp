#include "storage/postgres/pg_array.hpp"

namespace bulwark::postgres {

namespace {

// The server's array_isspace().
bool IsArraySpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool EqualsNullKeyword(std::string_view s) {
  if (s.size() != 4) return false;
  const char* kNull = "null";
  for (size_t i = 0; i < 4; ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kNull[i]) return false;
  }
  return true;
}

}  // namespace

std::string EncodeTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::optional<std::vector<std::string>> DecodeTextArray(std::string_view text) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && IsArraySpace(text[i])) ++i;
  };
  skip_space();
  // Optional dimension decoration: [l:u]=
  if (i < text.size() && text[i] == '[') {
    size_t eq = text.find('=', i);
    if (eq == std::string_view::npos) return std::nullopt;
    for (size_t j = i; j < eq; ++j) {
      char c = text[j];
      if (!(c == '[' || c == ']' || c == ':' || c == '-' || (c >= '0' && c <= '9'))) {
        return std::nullopt;
      }
    }
    i = eq + 1;
    skip_space();
  }
  if (i >= text.size() || text[i] != '{') return std::nullopt;
  ++i;
  std::vector<std::string> items;
  skip_space();
  if (i < text.size() && text[i] == '}') {
    ++i;
    skip_space();
    if (i != text.size()) return std::nullopt;
    return items;
  }
  for (;;) {
    skip_space();
    if (i >= text.size()) return std::nullopt;
    std::string item;
    if (text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char c = text[i++];
        if (c == '\\') {
          if (i >= text.size()) return std::nullopt;
          item += text[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          item += c;
        }
      }
      if (!closed) return std::nullopt;
      skip_space();
    } else {
      if (text[i] == '{') return std::nullopt;  // multi-dimensional
      bool escaped = false;
      size_t last_significant = 0;  // length of item up to its last non-space or escaped byte
      while (i < text.size() && text[i] != ',' && text[i] != '}') {
        char c = text[i++];
        if (c == '"' || c == '{') return std::nullopt;
        if (c == '\\') {
          if (i >= text.size()) return std::nullopt;
          item += text[i++];
          escaped = true;
          last_significant = item.size();
        } else {
          item += c;
          if (!IsArraySpace(c)) last_significant = item.size();
        }
      }
      item.resize(last_significant);
      if (item.empty() && !escaped) return std::nullopt;
      if (!escaped && EqualsNullKeyword(item)) return std::nullopt;
    }
    items.push_back(std::move(item));
    if (i >= text.size()) return std::nullopt;
    if (text[i] == ',') {
      ++i;
      continue;
    }
    if (text[i] == '}') {
      ++i;
      skip_space();
      if (i != text.size()) return std::nullopt;
      return items;
    }
    return std::nullopt;
  }
}

}  // namespace bulwark::postgres
