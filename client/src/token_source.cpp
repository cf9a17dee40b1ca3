#include "bulwark/client/token_source.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <mutex>

namespace bulwark::client {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

struct ClientCredentialsTokenSource::Impl {
  Client& client;
  ClientCredentialsOptions options;
  std::mutex mutex;
  AccessToken current;  // outcome kValid when there is one
  Clock::time_point refresh_at{};
  Clock::time_point next_try{};
  uint64_t grants = 0;

  Clock::time_point Now() const { return options.now ? options.now() : Clock::now(); }

  AccessToken Grant(Clock::time_point now) {
    Request req;
    req.method = "POST";
    req.target = "/oauth2/token";
    req.idempotency = Idempotency::kNonIdempotent;  // each grant issues a token
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                   {"Accept", "application/json"}};
    req.body = "grant_type=client_credentials";
    if (!options.scope.empty()) req.body += "&scope=" + FormEncode(options.scope);
    if (options.basic_auth) {
      // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
      req.headers.emplace_back("Authorization",
                               "Basic " + Base64Encode(FormEncode(options.client_id) + ":" +
                                                       FormEncode(options.client_secret)));
    } else {
      req.body += "&client_id=" + FormEncode(options.client_id) +
                  "&client_secret=" + FormEncode(options.client_secret);
    }
    ++grants;
    auto r = client.Call(req);
    AccessToken t;
    t.outcome = r.outcome;
    t.error = r.error;
    boost::system::error_code ec;
    auto v = json::parse(r.body, ec);
    const json::object* o = !ec && v.is_object() ? &v.as_object() : nullptr;
    auto str = [&](const char* key) {
      const json::value* f = o != nullptr ? o->if_contains(key) : nullptr;
      return f != nullptr && f->is_string() ? std::string(f->as_string()) : std::string();
    };
    if (r.outcome == Outcome::kInvalid) {
      if (!str("error").empty()) t.error = str("error");  // RFC 6749 §5.2
      return t;
    }
    if (r.outcome != Outcome::kValid) return t;
    const json::value* exp = o != nullptr ? o->if_contains("expires_in") : nullptr;
    int64_t expires_in = 0;
    if (exp != nullptr && exp->is_int64()) expires_in = exp->as_int64();
    if (exp != nullptr && exp->is_uint64()) expires_in = static_cast<int64_t>(exp->as_uint64());
    if (exp != nullptr && exp->is_double()) expires_in = static_cast<int64_t>(exp->as_double());
    t.token = str("access_token");
    t.token_type = str("token_type");
    if (t.token.empty() || expires_in <= 0) {
      t.outcome = Outcome::kUnavailable;
      t.error = "token answer without access_token or expires_in";
      return t;
    }
    t.expires_in = std::chrono::seconds(expires_in);
    t.expires_at = now + t.expires_in;
    t.error.clear();
    return t;
  }

  Clock::time_point RefreshPoint(const AccessToken& t, Clock::time_point obtained) const {
    using std::chrono::duration_cast;
    using std::chrono::milliseconds;
    auto lifetime = duration_cast<milliseconds>(t.expires_in);
    auto by_fraction = milliseconds(static_cast<int64_t>(
        static_cast<double>(lifetime.count()) * std::clamp(options.refresh_fraction, 0.0, 1.0)));
    auto by_skew = lifetime - duration_cast<milliseconds>(options.refresh_skew);
    auto delay = by_skew.count() > 0 ? std::min(by_fraction, by_skew) : by_fraction;
    return obtained + delay;
  }
};

ClientCredentialsTokenSource::ClientCredentialsTokenSource(Client& client,
                                                           ClientCredentialsOptions options)
    : impl_(new Impl{client, std::move(options)}) {}

ClientCredentialsTokenSource::~ClientCredentialsTokenSource() = default;

AccessToken ClientCredentialsTokenSource::Get() {
  std::lock_guard lock(impl_->mutex);
  Impl& d = *impl_;
  auto now = d.Now();
  bool have = d.current.outcome == Outcome::kValid && now < d.current.expires_at;
  if (have && now < d.refresh_at) return d.current;
  if (have && now < d.next_try) return d.current;  // a renewal just failed; keep this one
  auto fresh = d.Grant(now);
  if (fresh.outcome == Outcome::kValid) {
    d.current = fresh;
    d.refresh_at = d.RefreshPoint(fresh, now);
    return fresh;
  }
  if (have && fresh.outcome == Outcome::kUnavailable) {
    d.next_try = now + d.options.retry_interval;
    return d.current;  // still valid: ride out the outage
  }
  d.current = AccessToken{};
  d.refresh_at = {};
  return fresh;
}

void ClientCredentialsTokenSource::Invalidate() {
  std::lock_guard lock(impl_->mutex);
  impl_->current = AccessToken{};
  impl_->refresh_at = {};
  impl_->next_try = {};
}

Clock::time_point ClientCredentialsTokenSource::refresh_at() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->refresh_at;
}

uint64_t ClientCredentialsTokenSource::grants() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->grants;
}

}  // namespace bulwark::client
