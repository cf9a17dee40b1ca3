// Names of Bulwark's threads, as `top -H`, `ps -L`, perf and /proc show them.
#pragma once

#include <string>
#include <string_view>

namespace bulwark {

// Names the calling thread (Linux keeps at most 15 bytes; longer names are
// cut). A name is diagnostics only: failure is ignored.
void NameThisThread(std::string_view name);

// The calling thread's name, empty when it cannot be read.
std::string ThisThreadName();

}  // namespace bulwark
