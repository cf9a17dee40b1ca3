// Scheduling priority of worker pools.
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <cstddef>

namespace bulwark {

// Sets the nice value of every thread of `pool` (it must have exactly
// `threads` threads, all idle). Password hashing runs at a lower priority so
// that a login flood, which can keep every core busy, cannot delay the I/O
// and store threads that answer verifications. Returns false when the kernel
// refused (the pool keeps running at the default priority).
bool SetPoolNiceness(boost::asio::thread_pool& pool, std::size_t threads, int nice);

}  // namespace bulwark
