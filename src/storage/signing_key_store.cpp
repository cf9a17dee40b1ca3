#include "storage/signing_key_store.hpp"

namespace bulwark {

const char* KeyStateName(KeyState state) {
  switch (state) {
    case KeyState::kNext:
      return "next";
    case KeyState::kActive:
      return "active";
    case KeyState::kRetired:
      return "retired";
  }
  return "retired";
}

std::optional<KeyState> ParseKeyState(std::string_view name) {
  if (name == "next") return KeyState::kNext;
  if (name == "active") return KeyState::kActive;
  if (name == "retired") return KeyState::kRetired;
  return std::nullopt;
}

}  // namespace bulwark
