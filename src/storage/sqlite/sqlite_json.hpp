// The one JSON shape the sqlite store writes itself: an array of strings
// (a session's role names). Internal to storage/sqlite.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::sqlite {

// ["a","b"]: quotes, backslashes and control characters escaped; other bytes
// (UTF-8) copied verbatim.
std::string EncodeStringArray(const std::vector<std::string>& items);

// Parses an array of strings (any JSON whitespace, every JSON string escape
// including surrogate pairs); std::nullopt when the text is anything else.
std::optional<std::vector<std::string>> DecodeStringArray(std::string_view json);

}  // namespace bulwark::sqlite
