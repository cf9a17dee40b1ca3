#include "storage/sqlite/sqlite_connection.hpp"

#include <algorithm>
#include <thread>
#include <utility>

namespace bulwark::sqlite {

namespace {

// A statement prepared for one use only (pragmas at open time).
struct OneShotFinalizer {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};

// Runs a pragma that answers one row and returns its first column.
Result<std::string> QueryPragma(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, OneShotFinalizer> stmt(raw);
  if (rc != SQLITE_OK) return ToError(db, rc, sql);
  rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_DONE) return std::string();
  if (rc != SQLITE_ROW) return ToError(db, rc, sql);
  const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
  return std::string(text == nullptr ? "" : reinterpret_cast<const char*>(text));
}

}  // namespace

Error ToError(sqlite3* db, int rc, std::string_view context) {
  std::string message = "sqlite: ";
  message += context;
  message += ": ";
  // errmsg describes the connection's last call; fall back to the generic text
  // when that call was not the one that produced `rc`.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    message += sqlite3_errmsg(db);
  } else {
    message += sqlite3_errstr(rc);
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
      return Error::Unavailable(std::move(message));
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return Error::AlreadyExists(std::move(message));
      }
      if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) return Error::NotFound(std::move(message));
      return Error::Internal(std::move(message));
    default:
      return Error::Internal(std::move(message));
  }
}

// --- Statement ---------------------------------------------------------------

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}

void Statement::Bind(int index, std::string_view text) {
  if (bind_rc_ != SQLITE_OK) return;
  // An empty string_view may have a null data(), which sqlite would bind as NULL.
  const char* data = text.data() == nullptr ? "" : text.data();
  bind_rc_ = sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void Statement::Bind(int index, int64_t value) {
  if (bind_rc_ != SQLITE_OK) return;
  bind_rc_ = sqlite3_bind_int64(stmt_, index, value);
}

Result<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) return ToError(db_, bind_rc_, "bind");
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return ToError(db_, rc, "query");
}

Status Statement::Run() {
  for (;;) {
    Result<bool> row = Step();
    if (!row.ok()) return row.error();
    if (!*row) return Status::Ok();
  }
}

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  int size = sqlite3_column_bytes(stmt_, column);  // after column_text, per the sqlite docs
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
}

int64_t Statement::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

// --- Connection --------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  // sqlite hands back a handle even on most failures; it must still be closed.
  std::unique_ptr<Connection> conn(new Connection(raw));
  if (rc != SQLITE_OK) return ToError(raw, rc, "open '" + path + "'");
  if (Status s = conn->Configure(busy_timeout_ms); !s.ok()) {
    Error e = s.error();
    return Error(e.code(), e.message() + " (database '" + path + "')");
  }
  return conn;
}

Connection::~Connection() {
  statements_.clear();  // finalize before close
}

Status Connection::Configure(int busy_timeout_ms) {
  sqlite3* db = db_.get();
  sqlite3_extended_result_codes(db, 1);
  busy_timeout_ = std::chrono::milliseconds(busy_timeout_ms);
  sqlite3_busy_handler(db, &Connection::OnBusy, this);

  // Switching a fresh file to WAL needs a brief exclusive lock; when another
  // process is doing the same, retry until the busy timeout runs out.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    Result<std::string> mode = QueryPragma(db, "PRAGMA journal_mode=WAL");
    if (!mode.ok()) {
      if (mode.error().IsUnavailable() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      return mode.error();
    }
    if (*mode != "wal") {
      return Error::Unavailable("sqlite: cannot enable WAL journal mode (got '" + *mode + "')");
    }
    break;
  }
  // FULL: the WAL is fsynced at every commit, so an acknowledged write
  // survives power loss, not only a crash of this process.
  if (Status s = Exec("PRAGMA synchronous=FULL", "set synchronous"); !s.ok()) return s;
  if (Status s = Exec("PRAGMA foreign_keys=ON", "enable foreign keys"); !s.ok()) return s;
  // Role grants rely on ON DELETE CASCADE; refuse a library built without it.
  Result<std::string> fk = QueryPragma(db, "PRAGMA foreign_keys");
  if (!fk.ok()) return fk.error();
  if (*fk != "1") return Error::Internal("sqlite: foreign keys are not supported by this sqlite");
  return Status::Ok();
}

// Instead of sqlite3_busy_timeout, whose sleeps grow to 100 ms: a commit
// holds the write lock for about one fsync (~1 ms here), so a writer that
// waits in such steps idles long after the lock is free (bench/run saw
// refresh p99 0.4-1.7 s with 16 concurrent rotations). Poll every 100 us for
// the first 100 tries, then every millisecond, until the busy timeout.
int Connection::OnBusy(void* self, int attempts) {
  auto* conn = static_cast<Connection*>(self);
  const auto now = std::chrono::steady_clock::now();
  if (attempts == 0) conn->busy_since_ = now;
  if (now - conn->busy_since_ >= conn->busy_timeout_) return 0;  // SQLITE_BUSY to the caller
  std::this_thread::sleep_for(attempts < 100 ? std::chrono::microseconds(100)
                                             : std::chrono::microseconds(1000));
  return 1;
}

Result<Statement> Connection::Prepare(std::string_view sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    std::unique_ptr<sqlite3_stmt, StatementFinalizer> stmt(raw);
    if (rc != SQLITE_OK) return ToError(db_.get(), rc, "prepare");
    if (stmt == nullptr) return Error::Internal("sqlite: prepare: empty statement");
    it = statements_.emplace(std::string(sql), std::move(stmt)).first;
  }
  return Statement(db_.get(), it->second.get());
}

Status Connection::Exec(const char* sql, std::string_view context) {
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return ToError(db_.get(), rc, context);
  return Status::Ok();
}

// --- Transaction -------------------------------------------------------------

Transaction::~Transaction() {
  // A failed COMMIT may leave the transaction open (busy) or already rolled back (I/O error).
  if (open_ && conn_.InTransaction()) {
    sqlite3_exec(conn_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::Begin() {
  Status s = conn_.Exec("BEGIN IMMEDIATE", "begin transaction");
  open_ = s.ok();
  return s;
}

Status Transaction::Commit() {
  Status s = conn_.Exec("COMMIT", "commit");
  if (s.ok()) open_ = false;
  return s;
}

// --- ConnectionPool ----------------------------------------------------------

ConnectionPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

Result<std::unique_ptr<ConnectionPool>> ConnectionPool::Open(const std::string& path,
                                                             int busy_timeout_ms, int size) {
  // Waiting for a pooled connection is waiting for another caller, like waiting
  // for another writer; a floor keeps tiny busy timeouts from starving callers.
  auto wait = std::max(std::chrono::milliseconds(busy_timeout_ms), std::chrono::milliseconds(1000));
  std::unique_ptr<ConnectionPool> pool(new ConnectionPool(wait));
  for (int i = 0; i < size; ++i) {
    Result<std::unique_ptr<Connection>> conn = Connection::Open(path, busy_timeout_ms);
    if (!conn.ok()) return conn.error();
    pool->idle_.push_back(std::move(conn).value());
  }
  return pool;
}

Result<ConnectionPool::Lease> ConnectionPool::Acquire() {
  std::unique_lock lock(mu_);
  if (!available_.wait_for(lock, wait_, [this] { return !idle_.empty(); })) {
    return Error::Unavailable("sqlite: no free connection in the pool");
  }
  std::unique_ptr<Connection> conn = std::move(idle_.back());
  idle_.pop_back();
  return Lease(this, std::move(conn));
}

void ConnectionPool::Release(std::unique_ptr<Connection> conn) {
  // Safety net: never hand the next caller a connection inside a transaction.
  if (conn->InTransaction()) {
    sqlite3_exec(conn->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(conn));
  }
  available_.notify_one();
}

}  // namespace bulwark::sqlite
