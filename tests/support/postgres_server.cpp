#include "tests/support/postgres_server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tests/support/process.hpp"

namespace bulwark::testing {

namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";
constexpr char kOpenssl[] = "/usr/bin/openssl";

struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

// fork + exec with stdout/stderr appended to `log_path`, stdin from /dev/null,
// other descriptors closed; as root, drops to `as` first. PR_SET_PDEATHSIG is
// set after setuid (credential changes clear it), so the child dies with us.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log_path, const RunAs& as,
            bool own_process_group) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot open " + log_path);
  if (as.drop && fchown(log_fd, as.uid, as.gid) != 0) {
    close(log_fd);
    throw std::runtime_error("cannot chown " + log_path);
  }
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<char*> c_argv;
  for (const std::string& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    close(log_fd);
    if (null_fd >= 0) close(null_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    if (own_process_group) setpgid(0, 0);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    close_range(3, ~0U, 0);
    if (as.drop) {
      if (setgroups(0, nullptr) != 0 || setgid(as.gid) != 0 || setuid(as.uid) != 0) _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the test died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execv(c_argv[0], c_argv.data());
    _exit(127);
  }
  close(log_fd);
  if (null_fd >= 0) close(null_fd);
  return pid;
}

// Waits for `pid` to exit at most `timeout`: its exit status (128+signal), or nullopt.
std::optional<int> WaitExit(pid_t pid, milliseconds timeout) {
  auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR) return -1;  // not our child any more
    if (SteadyClock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

// Direct children of `parent` (from /proc/<pid>/stat, field 4). PostgreSQL's
// backends call setsid(), so a process-group signal would miss them.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 1));
    std::string state;
    long ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent) children.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return children;
}

// Signals the postmaster and every process it forked.
void SignalServer(pid_t postmaster, int signo) {
  std::vector<pid_t> children = ChildrenOf(postmaster);
  kill(postmaster, signo);
  for (pid_t child : children) kill(child, signo);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void Chown(const std::string& path, const RunAs& as) {
  if (as.drop && chown(path.c_str(), as.uid, as.gid) != 0) {
    throw std::runtime_error("cannot chown " + path);
  }
}

void Openssl(const std::vector<std::string>& args, const std::string& log_path) {
  std::vector<std::string> argv = {kOpenssl};
  argv.insert(argv.end(), args.begin(), args.end());
  int status = RunCommand(argv, {}, log_path, "", std::chrono::seconds(30));
  if (status != 0) {
    throw std::runtime_error("openssl " + args[0] + " failed (" + std::to_string(status) +
                             "): " + ReadFile(log_path));
  }
}

}  // namespace

PostgresServer::PostgresServer(PostgresServerOptions options)
    : options_(options), dir_(std::make_unique<TempDir>()) {
  auto started = SteadyClock::now();
  data_dir_ = dir_->File("data");
  log_path_ = dir_->File("server.log");
  RunAs as;
  if (geteuid() == 0) {
    // initdb and postgres refuse to run as root.
    struct passwd* pw = getpwnam("postgres");
    if (pw == nullptr) throw std::runtime_error("running as root but there is no postgres user");
    drop_privileges_ = true;
    run_uid_ = pw->pw_uid;
    run_gid_ = pw->pw_gid;
    as = {true, run_uid_, run_gid_};
  }
  Chown(dir_->path(), as);
  chmod(dir_->path().c_str(), 0700);
  if (options_.tls) MakeCertificates();

  const std::string initdb_log = dir_->File("initdb.log");
  pid_t initdb =
      Spawn({std::string(kBinDir) + "/initdb", "-D", data_dir_, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"},
            initdb_log, as, false);
  std::optional<int> status = WaitExit(initdb, std::chrono::seconds(120));
  if (!status || *status != 0) {
    if (!status) {
      kill(initdb, SIGKILL);
      WaitExit(initdb, std::chrono::seconds(5));
    }
    throw std::runtime_error("initdb failed: " + ReadFile(initdb_log));
  }
  if (options_.tls) {
    std::ofstream conf(data_dir_ + "/postgresql.conf", std::ios::app);
    conf << "ssl = on\n"
         << "ssl_cert_file = '" << dir_->File("server.crt") << "'\n"
         << "ssl_key_file = '" << dir_->File("server.key") << "'\n";
  }

  // The port was free a moment ago; another process may take it before the
  // server binds, so try a few.
  for (int attempt = 1;; ++attempt) {
    port_ = FreePort();
    try {
      StartOnce();
      break;
    } catch (const std::exception&) {
      if (attempt >= 3) throw;
    }
  }
  startup_time_ = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - started);
}

PostgresServer::~PostgresServer() {
  if (replica_pid_ > 0) {
    SignalServer(replica_pid_, SIGKILL);
    WaitExit(replica_pid_, std::chrono::seconds(5));
  }
  try {
    Stop();
  } catch (...) {
  }
  if (pid_ > 0) {
    SignalServer(pid_, SIGKILL);
    WaitExit(pid_, std::chrono::seconds(5));
  }
}

void PostgresServer::MakeCertificates() {
  const std::string log = dir_->File("openssl.log");
  auto make_ca = [&](const std::string& name, const std::string& cn) {
    Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", dir_->File(name + ".key"), "-out", dir_->File(name + ".crt"), "-days", "2",
             "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"},
            log);
  };
  make_ca("ca", "Bulwark Test CA");
  make_ca("other-ca", "Unrelated Test CA");
  Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           dir_->File("server.key"), "-out", dir_->File("server.csr"), "-subj", "/CN=localhost"},
          log);
  WriteFile(dir_->File("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth\n");
  Openssl({"x509", "-req", "-in", dir_->File("server.csr"), "-CA", dir_->File("ca.crt"), "-CAkey",
           dir_->File("ca.key"), "-CAcreateserial", "-out", dir_->File("server.crt"), "-days", "2",
           "-extfile", dir_->File("server.ext")},
          log);
  // The server insists on a private key only its owner can read.
  RunAs as{drop_privileges_, run_uid_, run_gid_};
  chmod(dir_->File("server.key").c_str(), 0600);
  Chown(dir_->File("server.key"), as);
  Chown(dir_->File("server.crt"), as);
  ca_file_ = dir_->File("ca.crt");
  other_ca_file_ = dir_->File("other-ca.crt");
}

void PostgresServer::StartOnce() {
  RunAs as{drop_privileges_, run_uid_, run_gid_};
  // postmaster.pid of a killed server must not be taken for ours.
  pid_ = Spawn({std::string(kBinDir) + "/postgres",
                "-D",
                data_dir_,
                "-p",
                std::to_string(port_),
                "-h",
                "127.0.0.1",
                "-k",
                dir_->path(),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
                "-c",
                "logging_collector=off"},
               log_path_, as, true);
  paused_ = false;
  try {
    WaitReady();
  } catch (...) {
    SignalServer(pid_, SIGKILL);
    WaitExit(pid_, std::chrono::seconds(5));
    pid_ = -1;
    throw;
  }
}

int PostgresServer::StartStreamingReplica() {
  RunAs as{drop_privileges_, run_uid_, run_gid_};
  const std::string replica_dir = dir_->File("replica");
  const std::string log = dir_->File("replica.log");
  pid_t backup = Spawn(
      {std::string(kBinDir) + "/pg_basebackup", "-h", "127.0.0.1", "-p", std::to_string(port_),
       "-U", "postgres", "-D", replica_dir, "-R", "-X", "stream", "-c", "fast"},
      log, as, false);
  std::optional<int> status = WaitExit(backup, std::chrono::seconds(120));
  if (!status || *status != 0) {
    if (!status) kill(backup, SIGKILL);
    throw std::runtime_error("pg_basebackup failed: " + ReadFile(log));
  }
  chmod(replica_dir.c_str(), 0700);
  replica_port_ = FreePort();
  replica_pid_ = Spawn(
      {std::string(kBinDir) + "/postgres", "-D", replica_dir, "-p", std::to_string(replica_port_),
       "-h", "127.0.0.1", "-k", dir_->path(), "-c", "fsync=off", "-c", "max_connections=200", "-c",
       "shared_buffers=32MB", "-c", "logging_collector=off"},
      log, as, true);
  // max_connections must not be below the primary's (200). postmaster.pid says "standby" once the
  // hot standby accepts read-only connections.
  auto deadline = SteadyClock::now() + std::chrono::seconds(30);
  while (SteadyClock::now() < deadline) {
    if (WaitExit(replica_pid_, milliseconds(0)).has_value()) {
      replica_pid_ = -1;
      throw std::runtime_error("the standby exited during start-up: " + ReadFile(log));
    }
    std::istringstream lines(ReadFile(replica_dir + "/postmaster.pid"));
    std::string line;
    std::vector<std::string> fields;
    while (std::getline(lines, line)) fields.push_back(line);
    if (fields.size() >= 8 && fields[0] == std::to_string(replica_pid_) &&
        (fields[7].rfind("standby", 0) == 0 || fields[7].rfind("ready", 0) == 0)) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  // Streaming, as the primary sees it.
  const std::string out = dir_->File("replication.out");
  while (SteadyClock::now() < deadline) {
    std::ofstream(out, std::ios::trunc).close();
    RunCommand({std::string(kBinDir) + "/psql", "-X", "-At", "-h", "127.0.0.1", "-p",
                std::to_string(port_), "-U", "postgres", "-d", "postgres", "-c",
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"},
               {{"PGCONNECT_TIMEOUT", "5"}}, out, "", std::chrono::seconds(10));
    if (ReadFile(out).rfind("1", 0) == 0) return replica_port_;
    std::this_thread::sleep_for(milliseconds(50));
  }
  throw std::runtime_error("the standby is not streaming within 30 s: " + ReadFile(log));
}

void PostgresServer::WaitReady() {
  auto deadline = SteadyClock::now() + std::chrono::seconds(30);
  const std::string pid_file = data_dir_ + "/postmaster.pid";
  while (SteadyClock::now() < deadline) {
    if (WaitExit(pid_, milliseconds(0)).has_value()) {
      pid_ = -1;
      throw std::runtime_error("postgres exited during start-up: " + LogTail());
    }
    // Line 1 is the postmaster's pid, line 8 its status ("ready" once it accepts connections).
    std::istringstream lines(ReadFile(pid_file));
    std::string line;
    std::vector<std::string> fields;
    while (std::getline(lines, line)) fields.push_back(line);
    if (fields.size() >= 8 && fields[0] == std::to_string(pid_) &&
        fields[7].rfind("ready", 0) == 0) {
      return;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  throw std::runtime_error("postgres not ready within 30 s: " + LogTail());
}

void PostgresServer::Start() {
  if (running()) return;
  StartOnce();
}

void PostgresServer::Stop() {
  if (pid_ <= 0) return;
  if (paused_) Resume();
  kill(pid_, SIGINT);  // fast shutdown: abort transactions, disconnect clients
  if (!WaitExit(pid_, std::chrono::seconds(10)).has_value()) {
    SignalServer(pid_, SIGKILL);
    WaitExit(pid_, std::chrono::seconds(5));
  }
  pid_ = -1;
}

void PostgresServer::Kill() {
  if (pid_ <= 0) return;
  SignalServer(pid_, SIGKILL);  // postmaster and backends, as in a machine crash
  WaitExit(pid_, std::chrono::seconds(10));
  pid_ = -1;
  paused_ = false;
  // Backends are the postmaster's children, not ours: give them a moment to
  // go, so a Start() right after finds no process attached to the old memory.
  std::this_thread::sleep_for(milliseconds(50));
}

void PostgresServer::Pause() {
  if (pid_ <= 0) return;
  SignalServer(pid_, SIGSTOP);
  paused_ = true;
}

void PostgresServer::Resume() {
  if (pid_ <= 0) return;
  SignalServer(pid_, SIGCONT);
  paused_ = false;
}

bool PostgresServer::running() {
  if (pid_ <= 0) return false;
  if (WaitExit(pid_, milliseconds(0)).has_value()) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string PostgresServer::Conninfo(const std::string& dbname) const {
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) +
                         " user=postgres dbname=" + dbname + " connect_timeout=5";
  if (options_.tls) {
    conninfo += " sslmode=verify-full sslrootcert=" + ca_file_;
  } else {
    conninfo += " sslmode=disable";
  }
  return conninfo;
}

void PostgresServer::Execute(const std::string& sql, const std::string& dbname) {
  const std::string log = dir_->File("psql.log");
  std::vector<std::string> argv = {std::string(kBinDir) + "/psql",
                                   "-X",
                                   "-q",
                                   "-v",
                                   "ON_ERROR_STOP=1",
                                   "-h",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(port_),
                                   "-U",
                                   "postgres",
                                   "-d",
                                   dbname,
                                   "-c",
                                   sql};
  std::ofstream(log, std::ios::trunc).close();
  int status = RunCommand(argv, {{"PGCONNECT_TIMEOUT", "5"}}, log, "", std::chrono::seconds(30));
  if (status != 0) {
    throw std::runtime_error("psql failed (" + std::to_string(status) + "): " + ReadFile(log));
  }
}

void PostgresServer::CreateDatabase(const std::string& name) {
  Execute("CREATE DATABASE \"" + name + "\"");
}

std::string PostgresServer::CreateFreshSchema(const std::string& dbname) {
  std::string schema = "t_" + std::to_string(++schema_counter_);
  Execute("CREATE SCHEMA " + schema, dbname);
  return Conninfo(dbname) + " options=-csearch_path=" + schema;
}

std::string PostgresServer::ReadLog() const { return ReadFile(log_path_); }

std::string PostgresServer::LogTail() const {
  std::string log = ReadLog();
  return log.size() > 2000 ? log.substr(log.size() - 2000) : log;
}

}  // namespace bulwark::testing
