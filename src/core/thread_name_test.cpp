#include "core/thread_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace bulwark {
namespace {

// The name a new thread reads back after naming itself `name`.
std::string NameSeenByAThreadCalled(const std::string& name) {
  std::string seen;
  std::thread([&] {
    NameThisThread(name);
    seen = ThisThreadName();
  }).join();
  return seen;
}

TEST(ThreadNameTest, NamesTheCallingThreadOnly) {
  const std::string before = ThisThreadName();
  EXPECT_EQ(NameSeenByAThreadCalled("bulwark-test"), "bulwark-test");
  EXPECT_EQ(ThisThreadName(), before);
}

TEST(ThreadNameTest, LongNamesAreCutToWhatLinuxKeeps) {
  EXPECT_EQ(NameSeenByAThreadCalled("bulwark-a-very-long-thread-name"), "bulwark-a-very-");
}

}  // namespace
}  // namespace bulwark
