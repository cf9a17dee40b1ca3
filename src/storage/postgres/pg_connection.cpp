#include "storage/postgres/pg_connection.hpp"

#include <poll.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>

namespace bulwark::postgres {

namespace {

using std::chrono::milliseconds;

std::string Ms(milliseconds ms) { return std::to_string(ms.count()) + " ms"; }

// libpq's multi-line messages ("...failed: Connection refused\n\tIs the server
// running...") on one line. They name hosts and users, never passwords.
std::string OneLine(const char* message) {
  std::string out;
  bool space = false;
  for (const char* p = message == nullptr ? "" : message; *p != '\0'; ++p) {
    char c = *p;
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out.empty() ? std::string("unknown error") : out;
}

// Waits until `fd` is ready for `events` or `deadline`; 1 ready, 0 timed out, -1 error.
int WaitSocket(int fd, short events, SteadyClock::time_point deadline) {
  if (fd < 0) return -1;
  for (int attempts = 0; attempts < 1000; ++attempts) {
    auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return 0;
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return 1;
    if (rc == 0) continue;  // re-check the deadline (poll may wake a little early)
    if (errno != EINTR) return -1;
  }
  return 0;
}

bool StartsWith(const char* s, const char* prefix) {
  return s != nullptr && std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

bool Is(const char* s, const char* code) { return s != nullptr && std::strcmp(s, code) == 0; }

}  // namespace

Result<ConnectSettings> MakeConnectSettings(const std::string& conninfo,
                                            milliseconds connect_timeout,
                                            milliseconds statement_timeout) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (options == nullptr) {
    // parse_error quotes the offending part, which may be a password: not repeated.
    if (parse_error != nullptr) PQfreemem(parse_error);
    return Error::InvalidArgument(
        "postgres: the connection string is neither a libpq keyword/value string nor a "
        "postgres:// URI");
  }
  ConnectSettings settings;
  // Defaults the conninfo may override (it comes later, and the later keyword
  // wins): TCP keepalives, so a connection to a server that vanished without a
  // FIN (partition, dead host) is found dead within about a minute even while idle.
  for (const auto& [keyword, value] :
       {std::pair{"keepalives", "1"}, std::pair{"keepalives_idle", "30"},
        std::pair{"keepalives_interval", "10"}, std::pair{"keepalives_count", "3"}}) {
    settings.keywords.emplace_back(keyword);
    settings.values.emplace_back(value);
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    settings.keywords.emplace_back(o->keyword);
    settings.values.emplace_back(o->val);
  }
  PQconninfoFree(options);
  // Later keywords win: text always travels as UTF-8 whatever PGCLIENTENCODING says.
  settings.keywords.emplace_back("client_encoding");
  settings.values.emplace_back("UTF8");
  settings.keywords.emplace_back("fallback_application_name");
  settings.values.emplace_back("bulwark");
  settings.connect_timeout = connect_timeout;
  settings.statement_timeout = statement_timeout;
  return settings;
}

// --- PgResult -------------------------------------------------------------------

std::string PgResult::Text(int row, int col) const {
  return std::string(PQgetvalue(result_.get(), row, col),
                     static_cast<size_t>(PQgetlength(result_.get(), row, col)));
}

int64_t PgResult::Int(int row, int col) const {
  const char* text = PQgetvalue(result_.get(), row, col);
  int64_t value = 0;
  std::from_chars(text, text + std::strlen(text), value);
  return value;
}

bool PgResult::Bool(int row, int col) const {
  return PQgetvalue(result_.get(), row, col)[0] == 't';
}

int PgResult::Affected() const {
  const char* text = PQcmdTuples(result_.get());
  int value = 0;
  std::from_chars(text, text + std::strlen(text), value);
  return value;
}

// --- Connection -------------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectSettings& settings) {
  std::vector<const char*> keywords;
  std::vector<const char*> values;
  for (size_t i = 0; i < settings.keywords.size(); ++i) {
    keywords.push_back(settings.keywords[i].c_str());
    values.push_back(settings.values[i].c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  // Asynchronous connect, so connect_timeout is ours to the millisecond and
  // covers every host of a multi-host conninfo, TLS and authentication.
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(
      PQconnectStartParams(keywords.data(), values.data(), 0), &PQfinish);
  if (conn == nullptr) return Error::Internal("postgres: out of memory");
  if (PQstatus(conn.get()) == CONNECTION_BAD) {
    return Error::Unavailable("postgres: cannot connect: " + OneLine(PQerrorMessage(conn.get())));
  }
  auto deadline = SteadyClock::now() + settings.connect_timeout;
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (int steps = 0; state != PGRES_POLLING_OK; ++steps) {
    if (state == PGRES_POLLING_FAILED) {
      return Error::Unavailable("postgres: cannot connect: " + OneLine(PQerrorMessage(conn.get())));
    }
    if (steps > 10000) return Error::Unavailable("postgres: connection handshake does not end");
    short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    int ready = WaitSocket(PQsocket(conn.get()), events, deadline);
    if (ready == 0) {
      return Error::Unavailable("postgres: cannot connect within " + Ms(settings.connect_timeout));
    }
    if (ready < 0) {
      return Error::Unavailable("postgres: cannot connect: " + OneLine(PQerrorMessage(conn.get())));
    }
    state = PQconnectPoll(conn.get());
  }
  // Notices (e.g. "already exists, skipping" from migrations) are not errors: no stderr noise.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<Connection> connection(
      new Connection(conn.release(), settings.statement_timeout));
  // Server side bound on every statement of this connection.
  Result<PgResult> set = connection->Exec(
      "SET statement_timeout = " + std::to_string(settings.statement_timeout.count()),
      settings.connect_timeout);
  if (!set.ok()) return set.error();
  return connection;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }

bool Connection::idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

bool Connection::ReadyForReuse() {
  if (broken() || !idle()) return false;
  // An idle connection has nothing to read unless the server closed it or
  // sent a notice (a shutdown's FATAL message); either way, start afresh.
  pollfd p{PQsocket(conn_), POLLIN, 0};
  if (p.fd < 0) return false;
  return poll(&p, 1, 0) == 0;
}

Error Connection::Fail(FailureKind kind, Error error) {
  last_failure_ = kind;
  if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
  return error;
}

Error Connection::ConnectionError(const char* what) {
  broken_ = true;
  return Fail(FailureKind::kDependency, Error::Unavailable(std::string("postgres: ") + what + ": " +
                                                           OneLine(PQerrorMessage(conn_))));
}

Result<PgResult> Connection::Await(SteadyClock::time_point deadline) {
  std::unique_ptr<PGresult, void (*)(PGresult*)> error(nullptr, &PQclear);
  std::unique_ptr<PGresult, void (*)(PGresult*)> last(nullptr, &PQclear);
  bool input_failed = false;
  for (int rounds = 0;; ++rounds) {
    // Drain every complete result. PQgetResult returns null after the last one
    // (and also once the connection is lost, after reporting it).
    bool finished = false;
    while (!PQisBusy(conn_)) {
      PGresult* r = PQgetResult(conn_);
      if (r == nullptr) {
        finished = true;
        break;
      }
      ExecStatusType status = PQresultStatus(r);
      if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE ||
          status == PGRES_NONFATAL_ERROR) {
        if (error == nullptr) {
          error.reset(r);
        } else {
          PQclear(r);
        }
      } else {
        last.reset(r);
      }
    }
    if (finished) break;
    if (input_failed || rounds > 100000) return ConnectionError("connection lost");
    int ready = WaitSocket(PQsocket(conn_), POLLIN, deadline);
    if (ready == 0) {
      // The server did not even cancel the statement: hung or partitioned.
      // Abandon the connection (the pool closes it) rather than wait longer.
      broken_ = true;
      return Fail(FailureKind::kDependency,
                  Error::Unavailable("postgres: no answer within " +
                                     Ms(statement_timeout_ + kClientGrace)));
    }
    if (ready < 0 || PQconsumeInput(conn_) == 0) input_failed = true;
  }

  if (error == nullptr) {
    if (last == nullptr) return Fail(FailureKind::kOther, Error::Internal("postgres: no result"));
    if (PQstatus(conn_) != CONNECTION_OK) broken_ = true;
    last_failure_ = FailureKind::kNone;
    return PgResult(last.release());
  }

  const char* sqlstate = PQresultErrorField(error.get(), PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(error.get(), PG_DIAG_MESSAGE_PRIMARY);
  last_sqlstate_ = sqlstate == nullptr ? "" : sqlstate;
  // Only the primary message: DETAIL may quote a whole row (password hash included).
  std::string message =
      "postgres: " + OneLine(primary != nullptr ? primary : PQerrorMessage(conn_));
  if (sqlstate != nullptr) message += " (SQLSTATE " + std::string(sqlstate) + ")";

  if (sqlstate == nullptr || StartsWith(sqlstate, "08") || PQstatus(conn_) != CONNECTION_OK) {
    // Generated by libpq itself: the connection is gone.
    broken_ = true;
    return Fail(FailureKind::kDependency, Error::Unavailable(message));
  }
  if (StartsWith(sqlstate, "57P") || Is(sqlstate, "25006")) {
    // Server shutting down / crashed / starting, or a standby after a failover:
    // a new connection may reach a writable primary.
    broken_ = true;
    return Fail(FailureKind::kDependency, Error::Unavailable(message));
  }
  if (Is(sqlstate, "57014")) {
    return Fail(FailureKind::kDependency,
                Error::Unavailable("postgres: statement timed out after " + Ms(statement_timeout_) +
                                   " (SQLSTATE 57014)"));
  }
  if (Is(sqlstate, "55P03") || StartsWith(sqlstate, "53")) {
    return Fail(FailureKind::kDependency, Error::Unavailable(message));
  }
  if (Is(sqlstate, "40001") || Is(sqlstate, "40P01")) {
    return Fail(FailureKind::kOther, Error::Unavailable(message));
  }
  if (Is(sqlstate, "23505")) return Fail(FailureKind::kOther, Error::AlreadyExists(message));
  if (Is(sqlstate, "23503")) return Fail(FailureKind::kOther, Error::NotFound(message));
  if (StartsWith(sqlstate, "22")) {
    // Data exceptions quote the offending value: say only which kind it was.
    return Fail(FailureKind::kOther, Error::InvalidArgument("postgres: invalid value (SQLSTATE " +
                                                            std::string(sqlstate) + ")"));
  }
  return Fail(FailureKind::kOther, Error::Internal(message));
}

Result<PgResult> Connection::Exec(const std::string& sql, milliseconds timeout) {
  last_failure_ = FailureKind::kNone;
  last_sqlstate_.clear();
  if (broken()) return ConnectionError("connection lost");
  if (PQsendQuery(conn_, sql.c_str()) == 0) return ConnectionError("cannot send");
  return Await(SteadyClock::now() + timeout);
}

Result<PgResult> Connection::QueryOnce(const char* sql, const std::vector<const char*>& values) {
  auto deadline = SteadyClock::now() + statement_timeout_ + kClientGrace;
  auto found = prepared_.find(sql);
  if (found == prepared_.end()) {
    std::string name = "bulwark_" + std::to_string(prepared_.size() + 1);
    if (PQsendPrepare(conn_, name.c_str(), sql, static_cast<int>(values.size()), nullptr) == 0) {
      return ConnectionError("cannot send");
    }
    Result<PgResult> prepared = Await(deadline);
    if (!prepared.ok()) return prepared.error();
    found = prepared_.emplace(sql, std::move(name)).first;
  }
  if (PQsendQueryPrepared(conn_, found->second.c_str(), static_cast<int>(values.size()),
                          values.data(), nullptr, nullptr, 0) == 0) {
    return ConnectionError("cannot send");
  }
  return Await(deadline);
}

Result<PgResult> Connection::Query(const char* sql, const std::vector<std::string>& params) {
  last_failure_ = FailureKind::kNone;
  last_sqlstate_.clear();
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& p : params) {
    if (p.find('\0') != std::string::npos) {
      last_failure_ = FailureKind::kOther;
      return Error::InvalidArgument("postgres: text values cannot contain NUL bytes");
    }
    values.push_back(p.c_str());
  }
  if (broken()) return ConnectionError("connection lost");
  Result<PgResult> result = QueryOnce(sql, values);
  // 26000: the prepared statement vanished (DISCARD ALL by a pooler);
  // 0A000: its cached plan no longer fits the table. Neither ran: prepare again.
  if (!result.ok() && !broken() && idle() &&
      (last_sqlstate_ == "26000" || last_sqlstate_ == "0A000")) {
    prepared_.erase(sql);
    result = QueryOnce(sql, values);
  }
  return result;
}

// --- ConnectionPool ---------------------------------------------------------------

ConnectionPool::ConnectionPool(ConnectSettings settings, int size, milliseconds acquire_timeout)
    : settings_(std::move(settings)), size_(size), acquire_timeout_(acquire_timeout) {}

ConnectionPool::~ConnectionPool() = default;

ConnectionPool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

Result<ConnectionPool::Lease> ConnectionPool::Acquire() {
  auto deadline = SteadyClock::now() + acquire_timeout_;
  std::unique_lock lock(mutex_);
  for (;;) {
    while (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      if (conn->ReadyForReuse()) return Lease(this, std::move(conn));
      conn.reset();  // closed outside the lock
      lock.lock();
      --open_;
    }
    if (open_ < size_) {
      ++open_;
      lock.unlock();
      Result<std::unique_ptr<Connection>> conn = Connection::Open(settings_);
      if (!conn.ok()) {
        lock.lock();
        --open_;
        lock.unlock();
        available_.notify_one();
        return conn.error();
      }
      return Lease(this, std::move(conn).value());
    }
    if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= size_) {
      return Error::Unavailable("postgres: no connection free within " + Ms(acquire_timeout_) +
                                " (pool_size " + std::to_string(size_) + ")");
    }
  }
}

void ConnectionPool::Release(std::unique_ptr<Connection> conn) {
  // A broken connection, or one left inside a transaction, is closed (outside
  // the lock). A lost one suggests the others went the same way (restart,
  // failover, partition): they are closed too, and callers connect afresh.
  bool lost = conn->broken();
  bool reusable = !lost && conn->idle();
  std::vector<std::unique_ptr<Connection>> closing;
  if (!reusable) closing.push_back(std::move(conn));
  {
    std::lock_guard lock(mutex_);
    if (reusable) {
      idle_.push_back(std::move(conn));
    } else {
      --open_;
    }
    if (lost) {
      open_ -= static_cast<int>(idle_.size());
      for (auto& idle : idle_) closing.push_back(std::move(idle));
      idle_.clear();
    }
  }
  closing.clear();
  available_.notify_all();
}

}  // namespace bulwark::postgres
