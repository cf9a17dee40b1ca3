// Small helpers shared by the Redis client integration suites.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
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

// What Client::TrackKeyPrefix reports, kept for a test to wait on.
class RecordingListener final : public KeyChangeListener {
 public:
  void OnKeysChanged(const std::vector<std::string>* keys) override {
    std::lock_guard lock(mutex_);
    if (keys == nullptr) {
      ++flushes_;
    } else {
      changed_.insert(changed_.end(), keys->begin(), keys->end());
    }
    cv_.notify_all();
  }
  void OnTrackingChanged(bool live) override {
    std::lock_guard lock(mutex_);
    live_ = live;
    if (live) ++times_live_;
    cv_.notify_all();
  }

  // Waits (at most `timeout`) until tracking is `live`; whether it is.
  bool WaitLive(bool live, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return live_ == live; });
  }
  // Waits (at most 5 s) until `key` has been reported changed; whether it was.
  bool WaitChanged(const std::string& key) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] {
      return std::find(changed_.begin(), changed_.end(), key) != changed_.end();
    });
  }
  // Waits until tracking has become live `n` times in all and is live now.
  bool WaitTimesLive(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return live_ && times_live_ >= n; });
  }
  bool WaitFlush() {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return flushes_ > 0; });
  }
  std::vector<std::string> changed() {
    std::lock_guard lock(mutex_);
    return changed_;
  }
  int times_live() {
    std::lock_guard lock(mutex_);
    return times_live_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool live_ = false;
  int times_live_ = 0;
  int flushes_ = 0;
  std::vector<std::string> changed_;
};

}  // namespace bulwark::redis
