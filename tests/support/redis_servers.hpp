// Real Redis servers for integration tests, on 127.0.0.1 free ports, each in
// its own temporary directory: a standalone server (optionally with a
// password, TLS, or as a replica), a 6-node Cluster (3 primaries + 3
// replicas) and a Sentinel group (primary, replica, 3 sentinels).
//
// Every redis-server / redis-sentinel is our own foreground child with
// PR_SET_PDEATHSIG = SIGKILL, so it dies with the test process even when that
// crashes (the death signal follows the thread that started it: start servers
// from the test's main thread, e.g. in SetUpTestSuite). Destructors kill and
// reap every child and remove the directories. Every wait is bounded; a
// set-up that does not become ready throws std::runtime_error.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace bulwark::testing {

// Sends one command to 127.0.0.1:port (plain TCP) and returns the reply as
// text: status and bulk strings as they are, integers in decimal, nil as "",
// errors as "(error) <message>", arrays as their elements joined by '\n'.
// nullopt when the node does not answer within `timeout`.
std::optional<std::string> RedisCall(int port, const std::vector<std::string>& args,
                                     const std::string& password = "",
                                     std::chrono::milliseconds timeout = std::chrono::seconds(1));

// The value after `field` in a "field:value" text (INFO) or in a flat
// field\nvalue list (SENTINEL MASTER); "" when absent.
std::string RedisField(const std::string& text, const std::string& field);

// A redis-server or redis-sentinel child process.
class RedisProcess {
 public:
  RedisProcess(std::vector<std::string> argv, std::string log_path);
  ~RedisProcess();  // SIGKILL and reap
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Kill();  // SIGKILL and reap (bounded)
  void Terminate(
      std::chrono::milliseconds grace = std::chrono::seconds(5));  // SIGTERM, then SIGKILL
  std::string ReadLog() const;

 private:
  bool Reap(std::chrono::milliseconds timeout);
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_path_;
};

struct RedisServerOptions {
  std::string password;                 // requirepass (and masterauth when replicating)
  int replica_of_port = 0;              // replicate 127.0.0.1:<port>
  bool tls = false;                     // also listen with TLS (CA + server cert made with openssl)
  std::vector<std::string> extra_args;  // e.g. {"--cluster-enabled", "yes"}
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  // Uses `dir` (kept by the caller) instead of a private temporary directory.
  RedisServer(RedisServerOptions options, std::string dir);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }          // plain TCP (always open)
  int tls_port() const { return tls_port_; }  // 0 without TLS
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string tls_endpoint() const { return "127.0.0.1:" + std::to_string(tls_port_); }
  const std::string& ca_file() const { return ca_file_; }  // PEM CA of the TLS certificate
  const std::string& dir() const { return dir_; }
  bool running();

  void Kill();   // SIGKILL, no goodbye
  void Stop();   // SIGTERM (shutdown without saving), then SIGKILL after 5 s
  void Start();  // again, same ports and options; waits until it answers PING
  std::optional<std::string> Call(const std::vector<std::string>& args) const;
  void FlushAll();
  std::string ReadLog() const;

 private:
  void Launch();
  RedisServerOptions options_;
  std::unique_ptr<TempDir> own_dir_;
  std::string dir_;
  int port_ = 0;
  int tls_port_ = 0;
  std::string ca_file_;
  std::unique_ptr<RedisProcess> process_;
};

// 6 nodes: 3 primaries + 3 replicas, cluster-node-timeout 1000.
class RedisCluster {
 public:
  RedisCluster();
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  static constexpr int kNodes = 6;
  std::vector<int> ports() const;
  std::string seeds() const;  // "127.0.0.1:p1,...,127.0.0.1:p6"
  RedisServer& node(int index) { return *nodes_[static_cast<size_t>(index)]; }
  int IndexOfPort(int port) const;

  // From CLUSTER SLOTS of a live node: the primary serving `slot` (0 if none).
  int PrimaryPortForSlot(int slot) const;
  std::vector<int> PrimaryPorts() const;
  // True when every running node reports cluster_state:ok and knows 3
  // primaries that together serve all slots.
  bool Healthy() const;
  bool WaitHealthy(std::chrono::milliseconds timeout) const;

  // SIGKILLs the primary serving `slot` and waits until another node serves
  // it and the cluster is healthy again; returns that time (throws after
  // `timeout`). The killed node stays down until StartNode.
  std::chrono::milliseconds KillPrimaryAndWaitFailover(
      int slot, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void KillNode(int index) { node(index).Kill(); }
  void StartNode(int index) { node(index).Start(); }  // rejoins (as a replica if replaced)
  void KillAll();
  void StartAll();  // same ports and nodes.conf: the cluster re-forms (with no data)
  void FlushAll();  // on every running primary

 private:
  std::unique_ptr<TempDir> dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// 1 primary, 1 replica, 3 sentinels (quorum 2, down-after 1000 ms,
// failover-timeout 5000).
class RedisSentinelGroup {
 public:
  explicit RedisSentinelGroup(std::string master_name = "bulwark");
  ~RedisSentinelGroup();
  RedisSentinelGroup(const RedisSentinelGroup&) = delete;
  RedisSentinelGroup& operator=(const RedisSentinelGroup&) = delete;

  const std::string& master_name() const { return master_name_; }
  std::string sentinels() const;  // "127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3"
  std::vector<int> sentinel_ports() const;
  RedisServer& data_node(int index) { return *data_[static_cast<size_t>(index)]; }  // 0, 1
  // The primary's port as the sentinels report it (0 when they disagree or fail).
  int PrimaryPort() const;
  // The data node (0 or 1) that is the primary now; -1 when unknown.
  int PrimaryIndex() const;

  // SIGKILLs the current primary and waits until the sentinels name the other
  // node and it answers ROLE as master; returns that time (throws after
  // `timeout`). The killed node stays down until StartDataNode.
  std::chrono::milliseconds KillPrimaryAndWaitFailover(
      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  void StartDataNode(int index);  // sentinels make it a replica of the current primary
  void KillDataNodes();
  void StartDataNodes();
  void FlushAll();

 private:
  void StartSentinel(int index);
  std::string master_name_;
  std::unique_ptr<TempDir> dir_;
  std::vector<std::unique_ptr<RedisServer>> data_;
  std::vector<int> sentinel_ports_;
  std::vector<std::unique_ptr<RedisProcess>> sentinels_;
};

}  // namespace bulwark::testing
