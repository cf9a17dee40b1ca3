// JSON string literals, written by hand where pulling in a JSON library is
// not worth it (error bodies in http/, role lists in storage/sqlite/).
#pragma once

#include <string>
#include <string_view>

namespace bulwark {

// What AppendJsonString does with bytes that are not valid UTF-8.
enum class InvalidUtf8 {
  kReplace,   // each invalid byte becomes \ufffd: the output is always valid JSON text
  kVerbatim,  // bytes >= 0x80 are copied as they are: round-trips any byte string
};

// Appends s to out as a JSON string literal, quotes included: '"' and '\'
// escaped, control characters as \b \f \n \r \t or \u00XX, everything else
// (UTF-8) copied. Overlong forms, surrogates and code points above U+10FFFF
// count as invalid UTF-8.
void AppendJsonString(std::string& out, std::string_view s,
                      InvalidUtf8 invalid = InvalidUtf8::kReplace);

}  // namespace bulwark
