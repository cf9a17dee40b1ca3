#include "app/thread_priority.hpp"

#include <gtest/gtest.h>
#include <sched.h>
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

TEST(ThreadPriority, IdlePolicyMovesPoolThreadsToSchedIdle) {
  boost::asio::thread_pool pool(2);
  ASSERT_TRUE(SetPoolNiceness(pool, 2, 19, /*idle_policy=*/true));
  std::latch together(2);
  std::mutex mu;
  std::set<int> policies;
  for (int i = 0; i < 2; ++i) {
    boost::asio::post(pool, [&] {
      together.arrive_and_wait();
      std::lock_guard lock(mu);
      policies.insert(sched_getscheduler(0));
    });
  }
  pool.join();
  EXPECT_EQ(policies, std::set<int>{SCHED_IDLE});
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);  // the caller keeps its policy
}

}  // namespace
}  // namespace bulwark
