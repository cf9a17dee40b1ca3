#include "tests/support/redis_servers.hpp"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/process.hpp"

namespace bulwark::testing {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string FindBinary(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::stringstream ss(dirs);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  for (const char* d : {"/usr/bin/", "/usr/sbin/", "/usr/local/bin/"}) {
    std::string candidate = std::string(d) + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  throw std::runtime_error(name + " not found in PATH");
}

void Sleep(milliseconds ms) { std::this_thread::sleep_for(ms); }

std::string Flatten(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return "(error) " + std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < r->elements; ++i) {
        if (i > 0) out += '\n';
        out += Flatten(r->element[i]);
      }
      return out;
    }
    default:
      return "";
  }
}

// Calls `fn` with the raw reply; false when the node did not answer.
template <typename Fn>
bool WithReply(int port, const std::vector<std::string>& args, const std::string& password,
               milliseconds timeout, Fn&& fn) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (c == nullptr) return false;
  if (c->err != 0) {
    redisFree(c);
    return false;
  }
  redisSetTimeout(c, tv);
  auto call = [&](const std::vector<std::string>& a) -> redisReply* {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& s : a) {
      argv.push_back(s.data());
      lens.push_back(s.size());
    }
    return static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(a.size()), argv.data(), lens.data()));
  };
  if (!password.empty()) {
    redisReply* auth = call({"AUTH", password});
    if (auth == nullptr) {
      redisFree(c);
      return false;
    }
    freeReplyObject(auth);
  }
  redisReply* reply = call(args);
  if (reply == nullptr) {
    redisFree(c);
    return false;
  }
  fn(reply);
  freeReplyObject(reply);
  redisFree(c);
  return true;
}

// [ [start, end, [host, port, id], [replica...]...], ... ] -> (slot range, primary port)
struct SlotRange {
  int from = 0;
  int to = 0;
  int port = 0;
};

std::optional<std::vector<SlotRange>> ClusterSlots(int port) {
  std::vector<SlotRange> ranges;
  bool ok = WithReply(port, {"CLUSTER", "SLOTS"}, "", milliseconds(500), [&](redisReply* r) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; ++i) {
      redisReply* e = r->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) continue;
      redisReply* owner = e->element[2];
      if (owner->type != REDIS_REPLY_ARRAY || owner->elements < 2) continue;
      ranges.push_back({static_cast<int>(e->element[0]->integer),
                        static_cast<int>(e->element[1]->integer),
                        static_cast<int>(owner->element[1]->integer)});
    }
  });
  if (!ok) return std::nullopt;
  return ranges;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void MakeCertificates(const std::string& dir) {
  std::string openssl = FindBinary("openssl");
  std::string log = dir + "/openssl.log";
  auto run = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), openssl);
    if (RunCommand(argv, {}, log, "", std::chrono::seconds(30)) != 0) {
      throw std::runtime_error("openssl failed; see " + log);
    }
  };
  WriteFile(dir + "/ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", dir + "/ca.key", "-out", dir + "/ca.crt", "-days", "2", "-subj",
       "/CN=bulwark-test-ca"});
  run({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
       dir + "/server.key", "-out", dir + "/server.csr", "-subj", "/CN=localhost"});
  run({"x509", "-req", "-in", dir + "/server.csr", "-CA", dir + "/ca.crt", "-CAkey",
       dir + "/ca.key", "-CAcreateserial", "-out", dir + "/server.crt", "-days", "2", "-extfile",
       dir + "/ext.cnf"});
}

}  // namespace

std::optional<std::string> RedisCall(int port, const std::vector<std::string>& args,
                                     const std::string& password, milliseconds timeout) {
  std::string text;
  if (!WithReply(port, args, password, timeout, [&](redisReply* r) { text = Flatten(r); })) {
    return std::nullopt;
  }
  return text;
}

std::string RedisField(const std::string& text, const std::string& field) {
  std::stringstream ss(text);
  std::string line;
  bool take_next = false;
  while (std::getline(ss, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (take_next) return line;
    if (line == field) {
      take_next = true;
      continue;
    }
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  }
  return "";
}

// ---- RedisProcess -----------------------------------------------------------

RedisProcess::RedisProcess(std::vector<std::string> argv, std::string log_path)
    : log_path_(std::move(log_path)) {
  int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path_);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<char*> c_argv;
  for (auto& a : argv) c_argv.push_back(a.data());
  c_argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid_ == 0) {
    // Die with the test process, even when it crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
}

RedisProcess::~RedisProcess() { Kill(); }

bool RedisProcess::Reap(milliseconds timeout) {
  if (reaped_) return true;
  auto deadline = Clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      reaped_ = true;
      return true;
    }
    if (Clock::now() >= deadline) return false;
    Sleep(milliseconds(5));
  }
}

bool RedisProcess::running() { return pid_ > 0 && !Reap(milliseconds(0)); }

void RedisProcess::Kill() {
  if (pid_ <= 0 || reaped_) return;
  kill(pid_, SIGKILL);
  Reap(std::chrono::seconds(10));
}

void RedisProcess::Terminate(milliseconds grace) {
  if (pid_ <= 0 || reaped_) return;
  kill(pid_, SIGTERM);
  if (!Reap(grace)) Kill();
}

std::string RedisProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- RedisServer ------------------------------------------------------------

RedisServer::RedisServer(RedisServerOptions options) : options_(std::move(options)) {
  own_dir_ = std::make_unique<TempDir>();
  dir_ = own_dir_->path();
  Launch();
}

RedisServer::RedisServer(RedisServerOptions options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)) {
  Launch();
}

RedisServer::~RedisServer() { process_.reset(); }

void RedisServer::Launch() {
  if (options_.tls && ca_file_.empty()) {
    MakeCertificates(dir_);
    ca_file_ = dir_ + "/ca.crt";
  }
  static const std::string binary = FindBinary("redis-server");
  const bool fixed_ports = port_ != 0;  // a restart keeps its ports
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (!fixed_ports) {
      port_ = FreePort();
      tls_port_ = options_.tls ? FreePort() : 0;
    }
    std::vector<std::string> argv = {binary,
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--dir",
                                     dir_,
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--daemonize",
                                     "no",
                                     "--enable-debug-command",
                                     "yes",
                                     "--repl-diskless-sync-delay",
                                     "0",
                                     "--logfile",
                                     ""};
    if (!options_.password.empty()) {
      argv.insert(argv.end(),
                  {"--requirepass", options_.password, "--masterauth", options_.password});
    }
    if (options_.replica_of_port != 0) {
      argv.insert(argv.end(),
                  {"--replicaof", "127.0.0.1", std::to_string(options_.replica_of_port)});
    }
    if (options_.tls) {
      argv.insert(argv.end(), {"--tls-port", std::to_string(tls_port_), "--tls-cert-file",
                               dir_ + "/server.crt", "--tls-key-file", dir_ + "/server.key",
                               "--tls-ca-cert-file", ca_file_, "--tls-auth-clients", "no"});
    }
    argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
    process_ = std::make_unique<RedisProcess>(argv, dir_ + "/redis.log");
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && process_->running()) {
      auto pong = RedisCall(port_, {"PING"}, options_.password, milliseconds(200));
      if (pong && *pong == "PONG") return;
      Sleep(milliseconds(20));
    }
    process_->Kill();
    if (fixed_ports) Sleep(milliseconds(200));  // the port may be in TIME_WAIT or taken; retry
  }
  throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) +
                           "; log:\n" + ReadLog());
}

bool RedisServer::running() { return process_ && process_->running(); }

void RedisServer::Kill() {
  if (process_) process_->Kill();
}

void RedisServer::Stop() {
  if (process_) process_->Terminate();
}

void RedisServer::Start() {
  if (running()) return;
  Launch();
}

std::optional<std::string> RedisServer::Call(const std::vector<std::string>& args) const {
  return RedisCall(port_, args, options_.password);
}

void RedisServer::FlushAll() {
  auto r = Call({"FLUSHALL"});
  if (!r || *r != "OK") throw std::runtime_error("FLUSHALL failed on " + endpoint());
}

std::string RedisServer::ReadLog() const {
  std::ifstream in(dir_ + "/redis.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- RedisCluster -----------------------------------------------------------

RedisCluster::RedisCluster() : dir_(std::make_unique<TempDir>()) {
  for (int i = 0; i < kNodes; ++i) {
    std::string node_dir = dir_->File("node" + std::to_string(i));
    if (mkdir(node_dir.c_str(), 0755) != 0) throw std::runtime_error("mkdir " + node_dir);
    RedisServerOptions options;
    options.extra_args = {"--cluster-enabled",      "yes", "--cluster-config-file", "nodes.conf",
                          "--cluster-node-timeout", "1000"};
    nodes_.push_back(std::make_unique<RedisServer>(options, node_dir));
  }
  std::vector<std::string> argv = {FindBinary("redis-cli"), "--cluster", "create"};
  for (int port : ports()) argv.push_back("127.0.0.1:" + std::to_string(port));
  argv.insert(argv.end(), {"--cluster-replicas", "1", "--cluster-yes"});
  std::string log = dir_->File("create.log");
  if (RunCommand(argv, {}, log, "", std::chrono::seconds(60)) != 0) {
    throw std::runtime_error("redis-cli --cluster create failed; see " + log);
  }
  if (!WaitHealthy(std::chrono::seconds(30))) {
    throw std::runtime_error("Redis Cluster did not become healthy");
  }
  // And every replica is known to the first node.
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (true) {
    auto nodes = RedisCall(ports()[0], {"CLUSTER", "NODES"});
    int replicas = 0;
    if (nodes) {
      std::stringstream ss(*nodes);
      std::string line;
      while (std::getline(ss, line)) {
        if (line.find("slave") != std::string::npos) ++replicas;
      }
    }
    if (replicas == 3) break;
    if (Clock::now() >= deadline) throw std::runtime_error("Redis Cluster replicas not known");
    Sleep(milliseconds(50));
  }
}

RedisCluster::~RedisCluster() { nodes_.clear(); }

std::vector<int> RedisCluster::ports() const {
  std::vector<int> out;
  for (const auto& n : nodes_) out.push_back(n->port());
  return out;
}

std::string RedisCluster::seeds() const {
  std::string out;
  for (const auto& n : nodes_) out += (out.empty() ? "" : ",") + n->endpoint();
  return out;
}

int RedisCluster::IndexOfPort(int port) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->port() == port) return static_cast<int>(i);
  }
  return -1;
}

int RedisCluster::PrimaryPortForSlot(int slot) const {
  for (const auto& n : nodes_) {
    auto ranges = ClusterSlots(n->port());
    if (!ranges || ranges->empty()) continue;
    for (const SlotRange& r : *ranges) {
      if (slot >= r.from && slot <= r.to) return r.port;
    }
    return 0;
  }
  return 0;
}

std::vector<int> RedisCluster::PrimaryPorts() const {
  for (const auto& n : nodes_) {
    auto ranges = ClusterSlots(n->port());
    if (!ranges || ranges->empty()) continue;
    std::set<int> ports;
    for (const SlotRange& r : *ranges) ports.insert(r.port);
    return {ports.begin(), ports.end()};
  }
  return {};
}

bool RedisCluster::Healthy() const {
  int answering = 0;
  for (const auto& n : nodes_) {
    auto info = RedisCall(n->port(), {"CLUSTER", "INFO"}, "", milliseconds(300));
    if (!info) continue;  // down
    ++answering;
    if (RedisField(*info, "cluster_state") != "ok") return false;
    auto ranges = ClusterSlots(n->port());
    if (!ranges) return false;
    std::set<int> primaries;
    int64_t covered = 0;
    for (const SlotRange& r : *ranges) {
      primaries.insert(r.port);
      covered += r.to - r.from + 1;
      // The owner must be a live node.
      auto ping = RedisCall(r.port, {"PING"}, "", milliseconds(300));
      if (!ping || *ping != "PONG") return false;
    }
    if (primaries.size() != 3 || covered != 16384) return false;
  }
  return answering > 0;
}

bool RedisCluster::WaitHealthy(milliseconds timeout) const {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (Healthy()) return true;
    Sleep(milliseconds(50));
  }
  return false;
}

milliseconds RedisCluster::KillPrimaryAndWaitFailover(int slot, milliseconds timeout) {
  int old_port = PrimaryPortForSlot(slot);
  int index = IndexOfPort(old_port);
  if (index < 0) throw std::runtime_error("no primary for slot " + std::to_string(slot));
  auto start = Clock::now();
  nodes_[static_cast<size_t>(index)]->Kill();
  auto deadline = start + timeout;
  while (Clock::now() < deadline) {
    int now_port = PrimaryPortForSlot(slot);
    if (now_port != 0 && now_port != old_port && Healthy()) {
      return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    }
    Sleep(milliseconds(20));
  }
  throw std::runtime_error("no failover for slot " + std::to_string(slot));
}

void RedisCluster::KillAll() {
  for (auto& n : nodes_) n->Kill();
}

void RedisCluster::StartAll() {
  for (auto& n : nodes_) n->Start();
}

void RedisCluster::FlushAll() {
  for (int port : PrimaryPorts()) {
    auto r = RedisCall(port, {"FLUSHALL"});
    if (!r || *r != "OK") throw std::runtime_error("FLUSHALL failed on " + std::to_string(port));
  }
}

// ---- RedisSentinelGroup -----------------------------------------------------

RedisSentinelGroup::RedisSentinelGroup(std::string master_name)
    : master_name_(std::move(master_name)), dir_(std::make_unique<TempDir>()) {
  for (int i = 0; i < 2; ++i) {
    std::string node_dir = dir_->File("data" + std::to_string(i));
    if (mkdir(node_dir.c_str(), 0755) != 0) throw std::runtime_error("mkdir " + node_dir);
    RedisServerOptions options;
    if (i == 1) options.replica_of_port = data_[0]->port();
    data_.push_back(std::make_unique<RedisServer>(options, node_dir));
  }
  // The replica is in sync before the sentinels start.
  auto deadline = Clock::now() + std::chrono::seconds(20);
  while (true) {
    auto info = data_[1]->Call({"INFO", "replication"});
    if (info && RedisField(*info, "master_link_status") == "up") break;
    if (Clock::now() >= deadline) throw std::runtime_error("Sentinel group: replica not in sync");
    Sleep(milliseconds(20));
  }
  for (int i = 0; i < 3; ++i) {
    sentinel_ports_.push_back(0);
    sentinels_.push_back(nullptr);
    StartSentinel(i);
  }
  // Ready when every sentinel sees the two others.
  deadline = Clock::now() + std::chrono::seconds(30);
  while (true) {
    bool all = true;
    for (int port : sentinel_ports_) {
      auto master = RedisCall(port, {"SENTINEL", "MASTER", master_name_});
      if (!master || RedisField(*master, "num-other-sentinels") != "2") all = false;
    }
    if (all) break;
    if (Clock::now() >= deadline) throw std::runtime_error("Sentinel group: sentinels not meshed");
    Sleep(milliseconds(50));
  }
}

RedisSentinelGroup::~RedisSentinelGroup() {
  sentinels_.clear();
  data_.clear();
}

void RedisSentinelGroup::StartSentinel(int index) {
  static const std::string binary = FindBinary("redis-sentinel");
  std::string sdir = dir_->File("sentinel" + std::to_string(index));
  mkdir(sdir.c_str(), 0755);
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = FreePort();
    std::string conf = sdir + "/sentinel.conf";
    WriteFile(conf, "port " + std::to_string(port) +
                        "\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\ndir " + sdir +
                        "\nsentinel monitor " + master_name_ + " 127.0.0.1 " +
                        std::to_string(data_[0]->port()) + " 2\nsentinel down-after-milliseconds " +
                        master_name_ + " 1000\nsentinel failover-timeout " + master_name_ +
                        " 5000\nsentinel parallel-syncs " + master_name_ + " 1\n");
    auto process = std::make_unique<RedisProcess>(std::vector<std::string>{binary, conf},
                                                  sdir + "/sentinel.log");
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline && process->running()) {
      auto pong = RedisCall(port, {"PING"}, "", milliseconds(200));
      if (pong && *pong == "PONG") {
        sentinel_ports_[static_cast<size_t>(index)] = port;
        sentinels_[static_cast<size_t>(index)] = std::move(process);
        return;
      }
      Sleep(milliseconds(20));
    }
    process->Kill();
  }
  throw std::runtime_error("redis-sentinel did not start");
}

std::string RedisSentinelGroup::sentinels() const {
  std::string out;
  for (int port : sentinel_ports_)
    out += (out.empty() ? "" : ",") + ("127.0.0.1:" + std::to_string(port));
  return out;
}

std::vector<int> RedisSentinelGroup::sentinel_ports() const { return sentinel_ports_; }

int RedisSentinelGroup::PrimaryPort() const {
  int agreed = 0;
  for (int port : sentinel_ports_) {
    auto addr = RedisCall(port, {"SENTINEL", "get-master-addr-by-name", master_name_});
    if (!addr) return 0;
    size_t nl = addr->find('\n');
    if (nl == std::string::npos) return 0;
    int p = std::atoi(addr->c_str() + nl + 1);
    if (agreed != 0 && p != agreed) return 0;
    agreed = p;
  }
  return agreed;
}

int RedisSentinelGroup::PrimaryIndex() const {
  int port = PrimaryPort();
  for (size_t i = 0; i < data_.size(); ++i) {
    if (data_[i]->port() == port) return static_cast<int>(i);
  }
  return -1;
}

milliseconds RedisSentinelGroup::KillPrimaryAndWaitFailover(milliseconds timeout) {
  int index = PrimaryIndex();
  if (index < 0) throw std::runtime_error("Sentinel group: no agreed primary");
  int other = 1 - index;
  auto start = Clock::now();
  data_[static_cast<size_t>(index)]->Kill();
  auto deadline = start + timeout;
  while (Clock::now() < deadline) {
    if (PrimaryIndex() == other) {
      auto role = data_[static_cast<size_t>(other)]->Call({"ROLE"});
      if (role && role->rfind("master", 0) == 0) {
        return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
      }
    }
    Sleep(milliseconds(20));
  }
  throw std::runtime_error("Sentinel group: no failover");
}

void RedisSentinelGroup::StartDataNode(int index) { data_[static_cast<size_t>(index)]->Start(); }

void RedisSentinelGroup::KillDataNodes() {
  for (auto& d : data_) d->Kill();
}

void RedisSentinelGroup::StartDataNodes() {
  for (auto& d : data_) d->Start();
}

void RedisSentinelGroup::FlushAll() {
  int index = PrimaryIndex();
  if (index < 0) throw std::runtime_error("Sentinel group: no agreed primary");
  data_[static_cast<size_t>(index)]->FlushAll();
}

}  // namespace bulwark::testing
