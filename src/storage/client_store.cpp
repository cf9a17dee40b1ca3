#include "storage/client_store.hpp"

namespace bulwark {

namespace {
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
}  // namespace

std::string JoinTokens(const std::vector<std::string>& tokens) {
  std::string out;
  for (const std::string& t : tokens) {
    if (!out.empty()) out += ' ';
    out += t;
  }
  return out;
}

std::vector<std::string> SplitTokens(const std::string& joined) {
  std::vector<std::string> out;
  std::string current;
  for (char c : joined) {
    if (c == ' ') {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

Status CheckClientTokens(const OAuthClient& client) {
  for (const auto* list : {&client.grants, &client.scopes}) {
    for (const std::string& t : *list) {
      if (t.empty()) return Error::InvalidArgument("empty grant or scope");
      for (char c : t) {
        if (IsSpace(c)) return Error::InvalidArgument("grant or scope with whitespace");
      }
    }
  }
  return Status::Ok();
}

}  // namespace bulwark
