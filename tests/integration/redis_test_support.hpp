// Small helpers shared by the Redis client integration suites.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

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

// A thread that runs its own io_context, bound with BindThreadToIoContext
// like an HTTP I/O thread, and unbound when it stops.
class BoundThread {
 public:
  BoundThread() : work_(boost::asio::make_work_guard(io_)) {
    thread_ = std::thread([this] {
      BindThreadToIoContext(&io_);
      io_.run();
      BindThreadToIoContext(nullptr);
    });
  }
  ~BoundThread() { Stop(); }
  void Stop() {
    if (!thread_.joinable()) return;
    work_.reset();
    io_.stop();
    thread_.join();
  }

  struct Answer {
    std::optional<Reply> reply;
    bool on_this_thread = false;  // the callback ran on the bound thread
  };
  // Sends every command with TryCommandAsync from the bound thread, all in one
  // go (so they can share a write); the answers in order, or an empty vector
  // when they did not all come within 5 s.
  std::vector<Answer> TryAll(Client& client, std::vector<std::vector<std::string>> commands) {
    const size_t n = commands.size();
    auto answers = std::make_shared<std::vector<Answer>>(n);
    auto left = std::make_shared<size_t>(n);
    auto all = std::make_shared<std::promise<void>>();
    std::future<void> done = all->get_future();
    boost::asio::post(io_, [&client, commands = std::move(commands), answers, left, all] {
      const std::thread::id self = std::this_thread::get_id();
      for (size_t i = 0; i < commands.size(); ++i) {
        client.TryCommandAsync(commands[i], [=](std::optional<Reply> reply) {
          (*answers)[i] = {std::move(reply), std::this_thread::get_id() == self};
          if (--*left == 0) all->set_value();
        });
      }
    });
    if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
    return *answers;
  }

 private:
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

}  // namespace bulwark::redis
