// The drill's topology on loopback, in one temporary directory: PostgreSQL,
// a 6-node Redis Cluster, three `bulwark serve` replicas and HAProxy in
// front of them with HTTP health checks. Everything is a child process of
// the drill (with PDEATHSIG where the test support sets it) and is stopped
// by the destructor, also when the drill is interrupted or fails.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/postgres_server.hpp"
#include "tests/support/process.hpp"
#include "tests/support/redis_servers.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark::drill {

struct TopologyOptions {
  std::string binary;  // the `bulwark` executable
  int replicas = 3;
  bool sentinel = false;  // Redis Sentinel (1 primary, 1 replica, 3 sentinels) instead of Cluster
  int drain_delay_s = 2;  // BULWARK_DRAIN_DELAY: longer than HAProxy takes to pull a server
  int shutdown_timeout_s = 5;
};

class Topology {
 public:
  explicit Topology(TopologyOptions options);  // starts everything; throws on failure
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  int haproxy_port() const { return haproxy_port_; }
  std::vector<int> replica_ports() const { return replica_ports_; }
  int replicas() const { return static_cast<int>(replica_ports_.size()); }
  std::string dir() const { return dir_->path(); }
  std::string issuer() const { return "http://127.0.0.1:" + std::to_string(haproxy_port_); }
  // Every port and process id the drill started, for the leak check.
  std::vector<int> AllPorts() const;
  std::vector<int> AllPids();

  // Creates a user through the CLI against the shared stores.
  void AddUser(const std::string& username, const std::string& password);

  // A kubelet eviction: SIGTERM, SIGKILL once `grace` has passed, then a
  // replacement on the same port, ready. Returns whether SIGKILL was needed.
  bool Evict(int replica, std::chrono::milliseconds grace);
  // An unannounced SIGKILL, then a replacement.
  void Kill(int replica);
  // SIGKILL of a Redis primary (Cluster: the one serving slot 7000), then its
  // return as a replica; returns the failover time.
  std::chrono::milliseconds FailOverRedis();
  // Fast shutdown and restart of PostgreSQL (same port and data).
  void RestartPostgres();

 private:
  std::map<std::string, std::string> ReplicaEnv(int port) const;
  void StartReplica(int index);
  // StartReplica, then waits for /health 200; throws after 30 s.
  void StartReplacement(int index);
  bool WaitReady(int port, std::chrono::milliseconds timeout);
  void StartHaproxy();

  TopologyOptions options_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::PostgresServer> postgres_;
  std::unique_ptr<testing::RedisCluster> redis_;           // unless sentinel
  std::unique_ptr<testing::RedisSentinelGroup> sentinel_;  // when sentinel
  std::vector<int> replica_ports_;
  std::vector<std::unique_ptr<testing::ChildProcess>> replicas_;
  int generation_ = 0;
  int haproxy_port_ = 0;
  std::unique_ptr<testing::ChildProcess> haproxy_;
};

}  // namespace bulwark::drill
