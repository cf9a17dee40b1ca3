// Clock port: domain and service code never read the wall clock directly.
#pragma once

#include <chrono>
#include <cstdint>

namespace bulwark {

class Clock {
 public:
  virtual ~Clock() = default;
  // Seconds since the Unix epoch (wall clock; used for expiry stored in the database).
  virtual int64_t NowUnix() const = 0;
  // Monotonic time for measuring durations.
  virtual std::chrono::steady_clock::time_point Monotonic() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowUnix() const override {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::now();
  }
};

// A clock tests move by hand. Not thread-safe for concurrent Advance().
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_unix = 1'700'000'000) : now_(now_unix) {}
  int64_t NowUnix() const override { return now_; }
  std::chrono::steady_clock::time_point Monotonic() const override {
    return std::chrono::steady_clock::time_point(std::chrono::seconds(now_));
  }
  void Advance(int64_t seconds) { now_ += seconds; }
  void Set(int64_t now_unix) { now_ = now_unix; }

 private:
  int64_t now_;
};

}  // namespace bulwark
