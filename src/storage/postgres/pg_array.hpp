// PostgreSQL text[] literals, for sessions.roles. Internal to storage/postgres.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::postgres {

// {"a","b"}: every element quoted, '"' and '\' backslash-escaped, other bytes
// verbatim. Elements must not contain NUL (PostgreSQL text cannot).
std::string EncodeTextArray(const std::vector<std::string>& items);

// Parses a one-dimensional array as the server prints it (array_out): quoted
// or bare elements, backslash escapes, optional "[l:u]=" bounds. NULL elements
// and anything malformed (nested arrays included) give std::nullopt.
std::optional<std::vector<std::string>> DecodeTextArray(std::string_view text);

}  // namespace bulwark::postgres
