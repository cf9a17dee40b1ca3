// PostgresConninfo: SPEC §4's DB_HOST / DATABASE_URL -> a libpq conninfo.
#include <libpq-fe.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "storage/postgres/postgres_store.hpp"

namespace bulwark {

namespace {

bool IsHostNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool IsV6Char(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
         c == '.' || c == '%';
}

bool ValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return value >= 1 && value <= 65535;
}

struct HostPort {
  std::string host;
  std::string port;  // empty: libpq's default (PGPORT or 5432)
};

// One element of DB_HOST: name[:port], v4[:port], [v6][:port] or a bare v6 address.
bool ParseHostPort(std::string_view item, HostPort* out) {
  if (item.empty()) return false;
  if (item.front() == '[') {
    size_t close = item.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    std::string_view host = item.substr(1, close - 1);
    for (char c : host) {
      if (!IsV6Char(c)) return false;
    }
    std::string_view rest = item.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !ValidPort(rest.substr(1))) return false;
      out->port = std::string(rest.substr(1));
    }
    out->host = std::string(host);
    return true;
  }
  size_t colons = 0;
  for (char c : item) colons += c == ':' ? 1 : 0;
  if (colons > 1) {  // a bare IPv6 address, no port
    for (char c : item) {
      if (!IsV6Char(c)) return false;
    }
    out->host = std::string(item);
    return true;
  }
  std::string_view host = item;
  if (colons == 1) {
    size_t colon = item.find(':');
    host = item.substr(0, colon);
    if (!ValidPort(item.substr(colon + 1))) return false;
    out->port = std::string(item.substr(colon + 1));
  }
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') {
    return false;
  }
  for (char c : host) {
    if (!IsHostNameChar(c)) return false;
  }
  out->host = std::string(host);
  return true;
}

bool EnvSet(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0';
}

}  // namespace

Result<std::string> PostgresConninfo(const std::string& db_host, const std::string& database_url) {
  if (!database_url.empty()) {
    char* parse_error = nullptr;
    PQconninfoOption* options = PQconninfoParse(database_url.c_str(), &parse_error);
    if (parse_error != nullptr) PQfreemem(parse_error);
    if (options == nullptr) {
      // Not repeated: it may carry a password.
      return Error::InvalidArgument(
          "DATABASE_URL: not a PostgreSQL URI (postgres://user:pass@host:port/db?sslmode=...) "
          "or libpq keyword/value string");
    }
    PQconninfoFree(options);
    return database_url;
  }
  if (db_host.empty()) {
    return Error::InvalidArgument("DB_HOST / DATABASE_URL: neither is set");
  }

  std::vector<HostPort> hosts;
  size_t start = 0;
  for (;;) {
    size_t comma = db_host.find(',', start);
    std::string_view item = std::string_view(db_host).substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    HostPort hp;
    if (!ParseHostPort(item, &hp)) {
      // Not repeated: a misplaced URL would carry its password.
      return Error::InvalidArgument(
          "DB_HOST: expected host[:port] ([v6]:port for IPv6, comma-separated for several "
          "hosts); use DATABASE_URL for a URI");
    }
    hosts.push_back(std::move(hp));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }

  bool any_port = false;
  for (const HostPort& hp : hosts) any_port = any_port || !hp.port.empty();
  std::string host_list;
  std::string port_list;
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (i > 0) {
      host_list += ',';
      port_list += ',';
    }
    host_list += hosts[i].host;
    port_list += hosts[i].port.empty() ? "5432" : hosts[i].port;
  }
  std::string conninfo = "host=" + host_list;
  if (any_port) conninfo += " port=" + port_list;
  if (!EnvSet("PGDATABASE")) conninfo += " dbname=bulwark";
  if (!EnvSet("PGUSER")) conninfo += " user=bulwark";
  // Several hosts: a primary and its standbys; only a writable one will do.
  if (hosts.size() > 1 && !EnvSet("PGTARGETSESSIONATTRS")) {
    conninfo += " target_session_attrs=read-write";
  }
  return conninfo;
}

}  // namespace bulwark
