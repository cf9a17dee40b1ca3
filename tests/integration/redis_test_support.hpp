// Small helpers shared by the Redis client integration suites.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>

#include "redis/redis_client.hpp"

namespace bulwark::redis {

using Clock = std::chrono::steady_clock;

inline int64_t MsSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// Connect(), or a test failure and nullptr.
inline std::unique_ptr<Client> MustConnect(const ClientOptions& options) {
  auto client = Connect(options);
  if (!client.ok()) {
    ADD_FAILURE() << "Connect: " << client.error().message();
    return nullptr;
  }
  return std::move(*client);
}

}  // namespace bulwark::redis
