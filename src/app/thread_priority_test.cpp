#include "app/thread_priority.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <latch>
#include <mutex>
#include <set>

namespace bulwark {
namespace {

TEST(ThreadPriority, EveryPoolThreadGetsTheNiceValueAndOthersKeepTheirs) {
  const int before = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  boost::asio::thread_pool pool(3);
  ASSERT_TRUE(SetPoolNiceness(pool, 3, 19));

  // Occupy all three threads at once so each reports its own priority.
  std::latch together(3);
  std::mutex mu;
  std::set<int> niceness;
  std::set<pid_t> threads;
  for (int i = 0; i < 3; ++i) {
    boost::asio::post(pool, [&] {
      together.arrive_and_wait();
      std::lock_guard lock(mu);
      niceness.insert(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())));
      threads.insert(gettid());
    });
  }
  pool.join();
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(niceness, std::set<int>{19});
  EXPECT_EQ(getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())), before);
}

}  // namespace
}  // namespace bulwark
