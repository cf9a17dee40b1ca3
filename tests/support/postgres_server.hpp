// A throw-away PostgreSQL 15 server for tests: a fresh cluster (initdb) in a
// temporary directory, the `postgres` binary run directly as a child process
// (not daemonized) on a free 127.0.0.1 port, fsync off, trust authentication
// for user "postgres".
//
// As root (CI) initdb and postgres run as the unprivileged `postgres` user.
// The server gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the test process
// even when the test crashes; note that the signal follows the *thread* that
// started it: call the constructor and Start() from a thread that lives as
// long as the server (the main thread, SetUpTestSuite, a static).
//
// Needs no libpq: readiness is read from postmaster.pid, SQL runs through psql.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "tests/support/temp_dir.hpp"

namespace bulwark::testing {

struct PostgresServerOptions {
  // ssl=on with a server certificate for localhost / 127.0.0.1 signed by a
  // test CA made with the openssl CLI (see ca_file()).
  bool tls = false;
};

class PostgresServer {
 public:
  // Creates the cluster and starts the server; throws std::runtime_error
  // (with the server log's tail) when it cannot. Typically 1-2 s.
  explicit PostgresServer(PostgresServerOptions options = {});
  // Stops the server (fast shutdown, SIGKILL after a bound) and removes the directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  bool tls() const { return options_.tls; }

  // A libpq conninfo for user postgres on 127.0.0.1:port(): with TLS,
  // sslmode=verify-full against ca_file(); without, sslmode=disable.
  std::string Conninfo(const std::string& dbname = "postgres") const;

  // TLS mode only: the CA that signed the server certificate, and an
  // unrelated CA (for "wrong CA" tests). PEM files in the temporary directory.
  const std::string& ca_file() const { return ca_file_; }
  const std::string& other_ca_file() const { return other_ca_file_; }

  // Fast shutdown (SIGINT), SIGKILL after 10 s; no-op when not running.
  void Stop();
  // Starts again on the same port and data directory; waits until ready.
  void Start();
  // SIGKILL to the server and all its backends (a machine crash); no-op when not running.
  void Kill();
  // SIGSTOP / SIGCONT to the server and all its backends (a hung server).
  void Pause();
  void Resume();
  bool paused() const { return paused_; }
  bool running();

  // A hot standby streaming from this server (pg_basebackup -R), in this
  // server's directory on a free port; stopped by the destructor. Returns
  // its port. Throws when it cannot start.
  int StartStreamingReplica();
  int replica_port() const { return replica_port_; }

  // Runs SQL (several statements allowed) with psql as user postgres; throws on failure.
  void Execute(const std::string& sql, const std::string& dbname = "postgres");
  void CreateDatabase(const std::string& name);
  // Creates a new, empty schema in `dbname` and returns a conninfo whose
  // search_path is that schema (options=-csearch_path=...), so stores opened
  // with it see nothing of any other.
  std::string CreateFreshSchema(const std::string& dbname = "postgres");

  const std::string& dir() const { return dir_->path(); }
  std::string ReadLog() const;
  // How long the constructor took (initdb + first start).
  std::chrono::milliseconds startup_time() const { return startup_time_; }

 private:
  void MakeCertificates();
  void StartOnce();
  void WaitReady();
  std::string LogTail() const;

  PostgresServerOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::string data_dir_;
  std::string log_path_;
  std::string ca_file_;
  std::string other_ca_file_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t replica_pid_ = -1;
  int replica_port_ = 0;
  bool paused_ = false;
  uid_t run_uid_ = 0;
  gid_t run_gid_ = 0;
  bool drop_privileges_ = false;
  int schema_counter_ = 0;
  std::chrono::milliseconds startup_time_{0};
};

}  // namespace bulwark::testing
