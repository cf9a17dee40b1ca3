#include "bulwark/client/client.hpp"

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "resilience/circuit_breaker.hpp"
#include "transport.hpp"

namespace bulwark::client {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kValid:
      return "valid";
    case Outcome::kInvalid:
      return "invalid";
    case Outcome::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

const char* BreakerStateName(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed:
      return "closed";
    case BreakerState::kHalfOpen:
      return "half-open";
    case BreakerState::kOpen:
      return "open";
  }
  return "unknown";
}

milliseconds BackoffCeiling(const RetryPolicy& policy, int retry) {
  auto ceiling = std::max(policy.base_delay, milliseconds(0));
  for (int i = 1; i < retry && ceiling < policy.max_delay; ++i) ceiling *= 2;
  return std::min(ceiling, policy.max_delay);
}

milliseconds BackoffDelay(const RetryPolicy& policy, int retry, std::mt19937_64& rng) {
  auto ceiling = BackoffCeiling(policy, retry).count();
  if (ceiling <= 0) return milliseconds(0);
  std::uniform_int_distribution<int64_t> dist(0, ceiling);
  return milliseconds(dist(rng));
}

std::optional<std::string> Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return std::nullopt;
}

std::string FormEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

BreakerState ToPublic(resilience::BreakerState s) {
  switch (s) {
    case resilience::BreakerState::kClosed:
      return BreakerState::kClosed;
    case resilience::BreakerState::kHalfOpen:
      return BreakerState::kHalfOpen;
    case resilience::BreakerState::kOpen:
      return BreakerState::kOpen;
  }
  return BreakerState::kOpen;
}

// One base URL: its connections, breaker and counters. The breaker calls are
// made under `mutex` so that the state before and after each one gives exact
// transition counts.
struct EndpointState {
  EndpointState(detail::Endpoint endpoint, const detail::TransportOptions& transport,
                const BreakerPolicy& policy)
      : pool(std::move(endpoint), transport),
        breaker(resilience::BreakerOptions{policy.failure_threshold, policy.open_duration}) {}

  bool Allow() {
    std::lock_guard lock(mutex);
    auto before = breaker.state();
    bool ok = breaker.Allow();
    if (before == resilience::BreakerState::kOpen &&
        breaker.state() == resilience::BreakerState::kHalfOpen) {
      ++half_opened;
    }
    if (!ok) ++rejected;
    return ok;
  }
  void Success() {
    std::lock_guard lock(mutex);
    auto before = breaker.state();
    breaker.RecordSuccess();
    if (before != resilience::BreakerState::kClosed) ++closed;
  }
  void Failure(std::string why) {
    std::lock_guard lock(mutex);
    ++failures;
    last_failure = std::move(why);
    auto before = breaker.state();
    breaker.RecordFailure();
    if (before != resilience::BreakerState::kOpen &&
        breaker.state() == resilience::BreakerState::kOpen) {
      ++opened;
    }
  }

  detail::ConnectionPool pool;
  resilience::CircuitBreaker breaker;
  std::mutex mutex;
  std::atomic<uint64_t> attempts{0};
  uint64_t failures = 0, rejected = 0, opened = 0, half_opened = 0, closed = 0;  // under mutex
  std::string last_failure;                                                      // under mutex
};

bool IsUnavailableStatus(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

}  // namespace

struct Client::Impl {
  ClientOptions options;
  std::vector<std::unique_ptr<EndpointState>> endpoints;
  std::atomic<uint64_t> next{0}, calls{0}, attempts{0}, retries{0}, failovers{0}, unavailable{0};
  std::mutex rng_mutex;
  std::mt19937_64 rng;
  std::mutex sleep_mutex;
  std::function<void(milliseconds)> sleep = [](milliseconds d) { std::this_thread::sleep_for(d); };

  milliseconds Jitter(int retry) {
    std::lock_guard lock(rng_mutex);
    return BackoffDelay(options.retry, retry, rng);
  }
  void Sleep(milliseconds d) {
    std::function<void(milliseconds)> fn;
    {
      std::lock_guard lock(sleep_mutex);
      fn = sleep;
    }
    fn(d);
  }

  Response Call(const Request& request);
};

Response Client::Impl::Call(const Request& request) {
  ++calls;
  const std::size_t n = endpoints.size();
  const bool idempotent = request.idempotency == Idempotency::kIdempotent;
  const std::size_t start =
      options.failover == FailoverOrder::kRoundRobin ? static_cast<std::size_t>(next++ % n) : 0;
  const auto deadline = Clock::now() + options.retry.call_deadline;
  const int max_attempts = std::max(1, options.retry.max_attempts);

  detail::RawRequest raw{request.method, request.target, request.headers, request.body};
  Response last;
  last.error = "no base URL accepted the call (every breaker is open)";
  std::vector<bool> tried(n, false);
  int attempts = 0;
  int empty_rounds = 0;
  int round = 0;
  std::size_t previous = n;
  bool attempted_this_round = false;
  // Bounded: every pass either makes an attempt, marks an endpoint tried, or
  // ends a round; rounds and attempts are capped.
  for (int guard = 0; guard < (max_attempts + 1) * static_cast<int>(n + 1) * 2; ++guard) {
    std::size_t pick = n;
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (start + k) % n;
      if (tried[i]) continue;
      tried[i] = true;
      if (endpoints[i]->Allow()) {
        pick = i;
        break;
      }
    }
    if (pick == n) {  // the round is over: back off, then go round again
      if (!attempted_this_round && ++empty_rounds >= max_attempts) break;
      if (attempts >= max_attempts || Clock::now() >= deadline) break;
      ++round;
      auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      Sleep(std::min(Jitter(round), std::max(left, milliseconds(0))));
      std::fill(tried.begin(), tried.end(), false);
      attempted_this_round = false;
      continue;
    }
    attempted_this_round = true;
    if (attempts > 0) {
      ++retries;
      if (pick != previous) ++failovers;
    }
    ++attempts;
    ++this->attempts;
    previous = pick;
    EndpointState& ep = *endpoints[pick];
    ++ep.attempts;

    detail::Exchange ex = ep.pool.Send(raw, idempotent);
    if (ex.failure != detail::Failure::kNone && ex.reused && !ex.received_any && idempotent) {
      // A kept-alive connection the server had closed: try once on a new one.
      ex = ep.pool.Send(raw, false);
    }
    last = Response{};
    last.attempts = attempts;
    last.base_url = ep.pool.endpoint().url;
    bool connect_failed = false;
    if (ex.failure == detail::Failure::kNone) {
      last.status = ex.status;
      last.headers = std::move(ex.headers);
      last.body = std::move(ex.body);
      if (!IsUnavailableStatus(ex.status)) {
        ep.Success();
        last.outcome = ex.status < 400 ? Outcome::kValid : Outcome::kInvalid;
        if (last.outcome == Outcome::kInvalid) last.error = "HTTP " + std::to_string(ex.status);
        return last;
      }
      last.outcome = Outcome::kUnavailable;
      last.error = "HTTP " + std::to_string(ex.status);
      if (ex.status == 429) {
        ep.Success();  // alive, only throttling
      } else {
        ep.Failure(last.error);
      }
    } else {
      connect_failed = ex.failure == detail::Failure::kConnect;
      last.outcome = Outcome::kUnavailable;
      last.error = ep.pool.endpoint().url + ": " + ex.error;
      ep.Failure(last.error);
      ep.pool.DropIdle();
    }
    if (!idempotent && !connect_failed) break;  // it may have reached the server
    if (attempts >= max_attempts || Clock::now() >= deadline) break;
  }
  if (last.outcome == Outcome::kUnavailable) ++unavailable;
  last.attempts = attempts;
  return last;
}

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.base_urls.empty()) throw std::invalid_argument("no Bulwark base URL");
  impl_->options = std::move(options);
  const auto& o = impl_->options;
  detail::TransportOptions transport{o.connect_timeout, o.read_timeout, o.ca_file,
                                     o.max_idle_connections, o.max_response_bytes};
  for (const auto& url : o.base_urls) {
    impl_->endpoints.push_back(
        std::make_unique<EndpointState>(detail::ParseBaseUrl(url), transport, o.breaker));
  }
  impl_->rng.seed(o.seed != 0 ? o.seed : std::random_device{}());
}

Client::~Client() = default;

const ClientOptions& Client::options() const { return impl_->options; }

void Client::SetSleepForTesting(std::function<void(milliseconds)> sleep) {
  std::lock_guard lock(impl_->sleep_mutex);
  impl_->sleep = std::move(sleep);
}

Response Client::Call(const Request& request) { return impl_->Call(request); }

ClientStats Client::Stats() const {
  ClientStats s;
  s.calls = impl_->calls;
  s.attempts = impl_->attempts;
  s.retries = impl_->retries;
  s.failovers = impl_->failovers;
  s.unavailable = impl_->unavailable;
  for (const auto& ep : impl_->endpoints) {
    EndpointStats e;
    e.base_url = ep->pool.endpoint().url;
    e.attempts = ep->attempts;
    std::lock_guard lock(ep->mutex);
    e.state = ToPublic(ep->breaker.state());
    e.failures = ep->failures;
    e.last_failure = ep->last_failure;
    e.rejected = ep->rejected;
    e.times_opened = ep->opened;
    e.times_half_opened = ep->half_opened;
    e.times_closed = ep->closed;
    s.endpoints.push_back(std::move(e));
  }
  return s;
}

namespace {

std::string JsonString(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t JsonInt(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return 0;
}

std::optional<json::object> ParseObject(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::vector<std::string> SplitRoles(const std::string& s) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos <= s.size() && !s.empty()) {
    auto comma = s.find(',', pos);
    auto item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

}  // namespace

VerifyResult Client::VerifySession(const std::string& token) {
  Request req;
  req.target = "/v1/auth/verify";
  req.headers = {{"Authorization", "Bearer " + token}};
  auto r = Call(req);
  VerifyResult out;
  out.outcome = r.outcome;
  out.error = r.error;
  if (r.outcome == Outcome::kValid) {
    out.identity.user = r.Header("X-Auth-User").value_or("");
    out.identity.user_id = r.Header("X-Auth-User-Id").value_or("");
    out.identity.roles = SplitRoles(r.Header("X-Auth-Roles").value_or(""));
  }
  return out;
}

LoginResult Client::Login(const std::string& username, const std::string& password) {
  Request req;
  req.method = "POST";
  req.target = "/v1/auth/login";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = json::serialize(json::object{{"username", username}, {"password", password}});
  req.idempotency = Idempotency::kNonIdempotent;
  auto r = Call(req);
  LoginResult out;
  out.outcome = r.outcome;
  out.error = r.error;
  if (r.outcome != Outcome::kValid) return out;
  auto o = ParseObject(r.body);
  if (!o || JsonString(*o, "session_token").empty()) {
    out.outcome = Outcome::kUnavailable;  // not a credential problem: a broken answer
    out.error = "login answer without session_token";
    return out;
  }
  out.session_token = JsonString(*o, "session_token");
  out.access_token = JsonString(*o, "access_token");
  out.refresh_token = JsonString(*o, "refresh_token");
  out.expires_in = JsonInt(*o, "expires_in");
  return out;
}

Outcome Client::Logout(const std::string& token, std::string* error) {
  Request req;
  req.method = "POST";
  req.target = "/v1/auth/logout";
  req.headers = {{"Authorization", "Bearer " + token}};
  req.idempotency = Idempotency::kIdempotent;
  auto r = Call(req);
  if (error != nullptr) *error = r.error;
  return r.outcome;
}

IntrospectionResult Client::Introspect(const std::string& token, const std::string& client_id,
                                       const std::string& client_secret) {
  Request req;
  req.method = "POST";
  req.target = "/oauth2/introspect";
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                 {"Authorization", "Basic " + Base64Encode(FormEncode(client_id) + ":" +
                                                           FormEncode(client_secret))}};
  req.body = "token=" + FormEncode(token);
  req.idempotency = Idempotency::kIdempotent;  // a read
  auto r = Call(req);
  IntrospectionResult out;
  out.outcome = r.outcome;
  out.error = r.error;
  if (r.outcome != Outcome::kValid) return out;
  auto o = ParseObject(r.body);
  if (!o) {
    out.outcome = Outcome::kUnavailable;
    out.error = "introspection answer is not a JSON object";
    return out;
  }
  const auto* active = o->if_contains("active");
  out.active = active != nullptr && active->is_bool() && active->as_bool();
  out.sub = JsonString(*o, "sub");
  out.client_id = JsonString(*o, "client_id");
  out.scope = JsonString(*o, "scope");
  out.username = JsonString(*o, "username");
  out.exp = JsonInt(*o, "exp");
  return out;
}

}  // namespace bulwark::client
