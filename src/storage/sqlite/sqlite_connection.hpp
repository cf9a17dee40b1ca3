// RAII over the sqlite3 C API, internal to storage/sqlite: a connection with
// a cache of persistent prepared statements, statements that reset
// themselves after use, IMMEDIATE transactions that roll back unless
// committed, and a small blocking pool of connections.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"

namespace bulwark::sqlite {

// Maps a sqlite result code to the error kinds callers act on: busy/locked
// and I/O trouble -> kUnavailable, unique keys -> kAlreadyExists, foreign
// keys -> kNotFound, anything else -> kInternal. The message carries
// sqlite3_errmsg (never a bound value) and `context`.
Error ToError(sqlite3* db, int rc, std::string_view context);

// A prepared statement borrowed from a connection's cache for one use. On
// destruction it is reset (ending any implicit read transaction, so the next
// call sees a fresh snapshot) and its bindings are cleared.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based. A failed bind is reported by the next Step/Run.
  void Bind(int index, std::string_view text);
  void Bind(int index, int64_t value);

  // true when a row is available, false when done.
  Result<bool> Step();
  // Steps to completion (writes).
  Status Run();

  // Columns are 0-based. NULL reads as "" / 0.
  std::string Text(int column) const;
  int64_t Int(int column) const;

  // Rows changed by the last completed write on this connection.
  int Changes() const { return sqlite3_changes(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

class Connection {
 public:
  // Opens (creating if missing) and configures the connection: extended
  // result codes, busy handler (waits up to busy_timeout_ms for another
  // writer), WAL, synchronous=FULL, foreign keys.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, int busy_timeout_ms);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A cached persistent statement for `sql` (must be a single statement).
  Result<Statement> Prepare(std::string_view sql);
  // Runs fixed SQL without parameters (BEGIN/COMMIT, DDL); may hold several statements.
  Status Exec(const char* sql, std::string_view context);

  sqlite3* handle() const { return db_.get(); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_.get()) == 0; }

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
  };
  struct StatementFinalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
  };
  // Heterogeneous lookup: find by string_view without building a std::string.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };

  explicit Connection(sqlite3* db) : db_(db) {}
  Status Configure(int busy_timeout_ms);
  // The busy handler: waits for another writer in short polls until the
  // busy timeout (see Configure).
  static int OnBusy(void* self, int attempts);

  std::chrono::milliseconds busy_timeout_{0};
  std::chrono::steady_clock::time_point busy_since_;

  // Declared first so it is destroyed last, after every cached statement.
  std::unique_ptr<sqlite3, DbCloser> db_;
  std::unordered_map<std::string, std::unique_ptr<sqlite3_stmt, StatementFinalizer>, SqlHash,
                     std::equal_to<>>
      statements_;
};

// BEGIN IMMEDIATE ... COMMIT: takes the write lock up front (waiting up to
// the busy timeout), so a transaction that reads before writing never has
// to upgrade its lock and cannot deadlock with another writer. Rolls back
// on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Begin();
  Status Commit();

 private:
  Connection& conn_;
  bool open_ = false;
};

// A fixed set of connections; each caller borrows one for the duration of a
// store call (a sqlite connection must not be used by two threads at once).
class ConnectionPool {
 public:
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ~Lease();
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  // Opens `size` connections up front so configuration errors surface at start-up.
  static Result<std::unique_ptr<ConnectionPool>> Open(const std::string& path, int busy_timeout_ms,
                                                      int size);

  // Waits for a free connection; kUnavailable if none frees up within `wait`.
  Result<Lease> Acquire();

 private:
  explicit ConnectionPool(std::chrono::milliseconds wait) : wait_(wait) {}
  void Release(std::unique_ptr<Connection> conn);

  std::chrono::milliseconds wait_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

}  // namespace bulwark::sqlite
