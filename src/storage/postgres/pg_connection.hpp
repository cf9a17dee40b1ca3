// libpq connections, results and the connection pool. Internal to storage/postgres;
// everyone else uses OpenPostgresStores() and the store interfaces.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"

namespace bulwark::postgres {

using SteadyClock = std::chrono::steady_clock;

// Extra time, beyond the server's statement_timeout, that the client waits for
// an answer before it gives the connection up (covers a hung or partitioned server).
inline constexpr std::chrono::milliseconds kClientGrace{1000};

// What a failed call means for the circuit breaker.
enum class FailureKind {
  kNone,        // the call succeeded
  kDependency,  // connection refused/lost, timeout, server shutting down: counts
  kOther,       // the server answered (constraint, bad input, bug): does not count
};

// How to open a connection: the parsed conninfo plus Bulwark's settings.
struct ConnectSettings {
  std::vector<std::string> keywords;
  std::vector<std::string> values;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds statement_timeout{2000};
};

// Parses `conninfo` (keyword/value or URI) with libpq. kInvalidArgument when it
// cannot be parsed; the message never repeats the string (it may hold a password).
Result<ConnectSettings> MakeConnectSettings(const std::string& conninfo,
                                            std::chrono::milliseconds connect_timeout,
                                            std::chrono::milliseconds statement_timeout);

// An owned PGresult holding rows in text format.
class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}

  int rows() const { return PQntuples(result_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string Text(int row, int col) const;
  int64_t Int(int row, int col) const;  // 0 when not an integer
  bool Bool(int row, int col) const;    // 't' is true
  // Rows changed by INSERT/UPDATE/DELETE (PQcmdTuples).
  int Affected() const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

class Connection {
 public:
  // Connects within settings.connect_timeout and sets statement_timeout.
  // kUnavailable when the server cannot be reached or refuses us.
  static Result<std::unique_ptr<Connection>> Open(const ConnectSettings& settings);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One parameterised statement ($1, $2, ... in text format), prepared on this
  // connection the first time its text is seen. Values must not contain NUL.
  Result<PgResult> Query(const char* sql, const std::vector<std::string>& params);

  // Simple-query protocol, no parameters, several statements allowed (DDL,
  // BEGIN/COMMIT). `timeout` bounds the client-side wait.
  Result<PgResult> Exec(const std::string& sql, std::chrono::milliseconds timeout);

  // The kind of the last failure of Query/Exec (kNone after a success).
  FailureKind last_failure() const { return last_failure_; }
  // True when the connection must not be reused (lost, or abandoned mid-query).
  bool broken() const;
  // True outside a transaction block.
  bool idle() const;
  // For the pool, before lending an idle connection: false when the server
  // closed it or sent something unsolicited (e.g. a shutdown notice) meanwhile.
  bool ReadyForReuse();

 private:
  explicit Connection(PGconn* conn, std::chrono::milliseconds statement_timeout)
      : conn_(conn), statement_timeout_(statement_timeout) {}

  // Collects the results of the command just sent, waiting at most until `deadline`.
  Result<PgResult> Await(SteadyClock::time_point deadline);
  Error Fail(FailureKind kind, Error error);
  Error ConnectionError(const char* what);
  Result<PgResult> QueryOnce(const char* sql, const std::vector<const char*>& values);

  PGconn* conn_;
  std::chrono::milliseconds statement_timeout_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
  FailureKind last_failure_ = FailureKind::kNone;
  std::string last_sqlstate_;
  bool broken_ = false;
};

// At most `size` connections, opened on demand; Acquire() waits for a free one.
class ConnectionPool {
 public:
  ConnectionPool(ConnectSettings settings, int size, std::chrono::milliseconds acquire_timeout);
  ~ConnectionPool();  // REQUIRES: every Lease returned
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // A connection that was healthy a moment ago. kUnavailable after
  // acquire_timeout without a free slot, or when a new connection fails.
  Result<Lease> Acquire();

  const ConnectSettings& settings() const { return settings_; }

 private:
  void Release(std::unique_ptr<Connection> conn);

  const ConnectSettings settings_;
  const int size_;
  const std::chrono::milliseconds acquire_timeout_;
  std::mutex mutex_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // idle + lent + being opened
};

}  // namespace bulwark::postgres
