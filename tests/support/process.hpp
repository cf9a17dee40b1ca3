// Runs a child process (the real `bulwark` binary) for end-to-end tests:
// environment, stdin, output captured to a file, signals, bounded waits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bulwark::testing {

class ChildProcess {
 public:
  // Starts `argv` with the current environment plus `env` (overriding), stdout
  // and stderr appended to `log_path`, and `stdin_data` written to its stdin.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env,
               std::string log_path, std::string stdin_data = "");
  ~ChildProcess();  // SIGKILLs and reaps a child still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signo) const;
  // Waits for exit at most `timeout`; the exit status (128+signal when killed), or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool running();
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  std::string log_path_;
};

// Runs a command to completion (bounded by `timeout`) and returns its exit status.
int RunCommand(std::vector<std::string> argv, std::map<std::string, std::string> env,
               const std::string& log_path, const std::string& stdin_data = "",
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

}  // namespace bulwark::testing
