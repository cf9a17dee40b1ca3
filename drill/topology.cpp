#include "drill/topology.hpp"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/support/http_client.hpp"

namespace bulwark::drill {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// ChildProcess runs a path, not a name to look up.
std::string HaproxyPath() {
  for (const char* candidate :
       {"/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"}) {
    if (access(candidate, X_OK) == 0) return candidate;
  }
  throw std::runtime_error("haproxy is not installed (Debian package haproxy)");
}

}  // namespace

Topology::Topology(TopologyOptions options) : options_(std::move(options)) {
  dir_ = std::make_unique<testing::TempDir>();
  postgres_ = std::make_unique<testing::PostgresServer>();
  postgres_->StartStreamingReplica();  // a hot standby, as the manifests run it
  if (options_.sentinel) {
    sentinel_ = std::make_unique<testing::RedisSentinelGroup>();
  } else {
    redis_ = std::make_unique<testing::RedisCluster>();
  }
  haproxy_port_ = testing::FreePort();  // the issuer every replica names
  for (int i = 0; i < options_.replicas; ++i) {
    replica_ports_.push_back(testing::FreePort());
    replicas_.push_back(nullptr);
  }
  // The first replica migrates the schema alone; the others then start together.
  StartReplica(0);
  for (int i = 1; i < options_.replicas; ++i) StartReplica(i);
  for (int port : replica_ports_) {
    if (!WaitReady(port, 30s)) throw std::runtime_error("a replica did not become ready");
  }
  StartHaproxy();
}

Topology::~Topology() {
  if (haproxy_) haproxy_->Signal(SIGKILL);
  for (auto& r : replicas_) {
    if (r) r->Signal(SIGKILL);
  }
  haproxy_.reset();
  replicas_.clear();  // reaps
  redis_.reset();
  sentinel_.reset();
  postgres_.reset();
}

std::map<std::string, std::string> Topology::ReplicaEnv(int port) const {
  std::map<std::string, std::string> env{
      {"BULWARK_LISTEN", "127.0.0.1:" + std::to_string(port)},
      {"BULWARK_DATA_DIR", dir_->File("data")},
      {"DATABASE_URL", "postgres://postgres@127.0.0.1:" + std::to_string(postgres_->port()) +
                           "/postgres?sslmode=disable"},
      {"BULWARK_ISSUER", "http://127.0.0.1:" + std::to_string(haproxy_port_)},
      {"BULWARK_LOG_FORMAT", "json"},
      {"BULWARK_DRAIN_DELAY", std::to_string(options_.drain_delay_s)},
      {"BULWARK_SHUTDOWN_TIMEOUT", std::to_string(options_.shutdown_timeout_s)},
      {"BULWARK_HASH_PRIORITY", "low"},
      // Cheap hashing: the drill is about evictions, not password cost.
      {"BULWARK_ARGON2_ITERATIONS", "1"},
      {"BULWARK_ARGON2_MEMORY_KIB", "8192"},
      {"BULWARK_COOKIE_SECURE", "false"},
  };
  if (sentinel_) {
    env["REDIS_SENTINELS"] = sentinel_->sentinels();
    env["REDIS_MASTER_NAME"] = sentinel_->master_name();
  } else {
    env["REDIS_HOSTS"] = redis_->seeds();
    env["CLUSTER_ENABLED"] = "true";
  }
  return env;
}

void Topology::StartReplica(int index) {
  const int port = replica_ports_[static_cast<size_t>(index)];
  replicas_[static_cast<size_t>(index)] = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{options_.binary, "serve"}, ReplicaEnv(port),
      dir_->File("replica-" + std::to_string(index) + "-" + std::to_string(++generation_) +
                 ".log"));
  if (index == 0 && !WaitReady(port, 30s)) {
    throw std::runtime_error("replica 0 did not become ready: " +
                             replicas_[0]->ReadLog().substr(0, 2000));
  }
}

bool Topology::WaitReady(int port, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (testing::HttpRequest(port, "GET", "/health").status == 200) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

void Topology::StartHaproxy() {
  const std::string cfg = dir_->File("haproxy.cfg");
  std::ofstream out(cfg);
  out << "global\n  maxconn 4096\n"
         "defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n"
         "  timeout server 30s\n  retries 3\n  option redispatch 1\n"
         "  retry-on conn-failure empty-response\n"
         "frontend bulwark\n  bind 127.0.0.1:"
      << haproxy_port_
      << "\n  default_backend replicas\n"
         "backend replicas\n  balance roundrobin\n  option httpchk GET /health\n"
         "  http-check expect status 200\n"
         "  default-server inter 200ms fall 2 rise 1\n";
  for (size_t i = 0; i < replica_ports_.size(); ++i) {
    out << "  server r" << i << " 127.0.0.1:" << replica_ports_[i] << " check\n";
  }
  out.close();
  haproxy_ = std::make_unique<testing::ChildProcess>(
      std::vector<std::string>{HaproxyPath(), "-db", "-f", cfg},
      std::map<std::string, std::string>{}, dir_->File("haproxy.log"));
  if (!WaitReady(haproxy_port_, 10s)) {
    throw std::runtime_error("haproxy did not answer: " + haproxy_->ReadLog());
  }
}

std::vector<int> Topology::AllPorts() const {
  std::vector<int> ports = replica_ports_;
  ports.push_back(haproxy_port_);
  ports.push_back(postgres_->port());
  ports.push_back(postgres_->replica_port());
  if (redis_) {
    for (int p : redis_->ports()) ports.push_back(p);
  } else {
    for (int p : sentinel_->sentinel_ports()) ports.push_back(p);
    for (int i = 0; i < 2; ++i) ports.push_back(sentinel_->data_node(i).port());
  }
  return ports;
}

std::vector<int> Topology::AllPids() {
  std::vector<int> pids;
  for (auto& r : replicas_) {
    if (r) pids.push_back(r->pid());
  }
  if (haproxy_) pids.push_back(haproxy_->pid());
  return pids;
}

void Topology::AddUser(const std::string& username, const std::string& password) {
  auto env = ReplicaEnv(replica_ports_[0]);
  const int status = testing::RunCommand(
      {options_.binary, "user", "add", "--username", username, "--password-stdin"}, env,
      dir_->File("cli.log"), password + "\n");
  if (status != 0) throw std::runtime_error("bulwark user add failed (see cli.log)");
}

bool Topology::Evict(int replica, std::chrono::milliseconds grace) {
  auto& process = replicas_[static_cast<size_t>(replica)];
  process->Signal(SIGTERM);
  bool killed = false;
  if (!process->Wait(grace)) {
    process->Signal(SIGKILL);
    process->Wait(5s);
    killed = true;
  }
  StartReplacement(replica);
  return killed;
}

void Topology::Kill(int replica) {
  auto& process = replicas_[static_cast<size_t>(replica)];
  process->Signal(SIGKILL);
  process->Wait(5s);
  StartReplacement(replica);
}

void Topology::StartReplacement(int replica) {
  StartReplica(replica);
  if (!WaitReady(replica_ports_[static_cast<size_t>(replica)], 30s)) {
    throw std::runtime_error("the replacement of replica " + std::to_string(replica) +
                             " did not become ready within 30 s");
  }
}

std::chrono::milliseconds Topology::FailOverRedis() {
  if (sentinel_) {
    const int primary = sentinel_->PrimaryIndex();
    std::chrono::milliseconds took = sentinel_->KillPrimaryAndWaitFailover();
    if (primary >= 0) sentinel_->StartDataNode(primary);  // back as a replica
    return took;
  }
  std::chrono::milliseconds took = redis_->KillPrimaryAndWaitFailover(7000);
  // The old primary comes back as a replica, as a rescheduled pod would.
  for (int i = 0; i < testing::RedisCluster::kNodes; ++i) {
    if (!redis_->node(i).running()) redis_->StartNode(i);
  }
  redis_->WaitHealthy(20s);  // the event lasts until it has rejoined
  return took;
}

void Topology::RestartPostgres() {
  postgres_->Stop();
  postgres_->Start();
}

}  // namespace bulwark::drill
