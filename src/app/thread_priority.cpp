#include "app/thread_priority.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <latch>

#include "core/thread_name.hpp"

namespace bulwark {

namespace {

// Runs `task` once on every thread of `pool`: each run waits until all have
// started, so no thread can take two of them.
template <typename Task>
void OnEveryThread(boost::asio::thread_pool& pool, std::size_t threads, const Task& task) {
  std::latch all_started(static_cast<std::ptrdiff_t>(threads));
  std::latch all_done(static_cast<std::ptrdiff_t>(threads));
  for (std::size_t i = 0; i < threads; ++i) {
    boost::asio::post(pool, [&] {
      all_started.arrive_and_wait();
      task();
      all_done.count_down();
    });
  }
  all_done.wait();
}

}  // namespace

bool SetPoolNiceness(boost::asio::thread_pool& pool, std::size_t threads, int nice,
                     bool idle_policy) {
  // Linux applies nice values per thread.
  std::atomic<bool> ok{true};
  OnEveryThread(pool, threads, [&] {
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) != 0) ok = false;
    if (idle_policy) {
      sched_param param{};
      if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) != 0) ok = false;
    }
  });
  return ok.load();
}

void NamePoolThreads(boost::asio::thread_pool& pool, std::size_t threads, std::string_view name) {
  OnEveryThread(pool, threads, [&] { NameThisThread(name); });
}

}  // namespace bulwark
