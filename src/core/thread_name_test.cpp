#include "core/thread_name.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace bulwark {
namespace {

TEST(ThreadNameTest, NamesTheCallingThreadOnly) {
  const std::string before = ThisThreadName();
  std::string inside;
  std::thread([&] {
    NameThisThread("bulwark-test");
    inside = ThisThreadName();
  }).join();
  EXPECT_EQ(inside, "bulwark-test");
  EXPECT_EQ(ThisThreadName(), before);
}

TEST(ThreadNameTest, LongNamesAreCutToWhatLinuxKeeps) {
  std::string inside;
  std::thread([&] {
    NameThisThread("bulwark-a-very-long-thread-name");
    inside = ThisThreadName();
  }).join();
  EXPECT_EQ(inside, "bulwark-a-very-");
}

}  // namespace
}  // namespace bulwark
