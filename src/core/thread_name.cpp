#include "core/thread_name.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>

namespace bulwark {

namespace {
constexpr std::size_t kMaxNameBytes = 15;  // TASK_COMM_LEN - 1
}  // namespace

void NameThisThread(std::string_view name) {
  std::array<char, kMaxNameBytes + 1> text{};
  const std::size_t length = std::min(name.size(), kMaxNameBytes);
  std::copy_n(name.data(), length, text.data());
  pthread_setname_np(pthread_self(), text.data());
}

std::string ThisThreadName() {
  std::array<char, kMaxNameBytes + 1> text{};
  if (pthread_getname_np(pthread_self(), text.data(), text.size()) != 0) return {};
  return text.data();
}

}  // namespace bulwark
