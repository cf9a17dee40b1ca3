// Scheduling priority and names of worker pools.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <string_view>

namespace bulwark {

// Sets the nice value of every thread of `pool` (it must have exactly
// `threads` threads, all idle). Password hashing runs at a lower priority so
// that a login flood, which can keep every core busy, cannot delay the I/O
// and store threads that answer verifications. With `idle_policy` the threads
// also move to SCHED_IDLE: a nice value only lowers their share, so a waking
// I/O thread may still wait up to a scheduler tick behind a hash; SCHED_IDLE
// threads are preempted at once by any normal thread that wakes (an idle
// machine still runs them at full speed). Returns false when the kernel
// refused (the pool keeps running at the default priority).
bool SetPoolNiceness(boost::asio::thread_pool& pool, std::size_t threads, int nice,
                     bool idle_policy = false);

// Names every thread of `pool` (exactly `threads` threads, all idle), so that
// `top -H` and perf tell the hashing pool from the store pool.
void NamePoolThreads(boost::asio::thread_pool& pool, std::size_t threads, std::string_view name);

}  // namespace bulwark
