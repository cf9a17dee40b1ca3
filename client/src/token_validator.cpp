#include "bulwark/client/token_validator.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>

#include "jwt/jwt.hpp"

namespace bulwark::client {

using SysClock = std::chrono::system_clock;

bool LooksLikeJwt(const std::string& token) {
  int dots = 0;
  for (char c : token) {
    if (c == '.') {
      ++dots;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return false;
    }
  }
  return dots == 2;
}

int64_t CacheControlMaxAge(const std::string& cache_control) {
  std::string lower;
  for (char c : cache_control)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto pos = lower.find("max-age=");
  // "s-maxage" is for shared caches; skip a match inside another directive.
  while (pos != std::string::npos && pos > 0 && lower[pos - 1] != ' ' && lower[pos - 1] != ',') {
    pos = lower.find("max-age=", pos + 1);
  }
  if (pos == std::string::npos) return -1;
  pos += 8;
  int64_t value = 0;
  bool digits = false;
  for (; pos < lower.size() && std::isdigit(static_cast<unsigned char>(lower[pos])) &&
         value < 100000000000;
       ++pos) {
    value = value * 10 + (lower[pos] - '0');
    digits = true;
  }
  return digits ? value : -1;
}

struct TokenValidator::Impl {
  Client& client;
  TokenValidatorOptions options;

  std::mutex fetch_mutex;  // one fetch at a time
  mutable std::mutex mutex;
  std::shared_ptr<const jwt::KeySet> keys;
  SysClock::time_point expires_at{};  // the cached set is fresh until then
  std::optional<SysClock::time_point> last_attempt;
  bool last_fetch_ok = false;
  JwksCacheStats stats;

  SysClock::time_point Now() const { return options.now ? options.now() : SysClock::now(); }

  bool RecentAttempt(SysClock::time_point now) const {
    return last_attempt && now - *last_attempt < options.min_refetch_interval;
  }

  // Fetches the JWKS (caller holds fetch_mutex, not mutex).
  bool Fetch() {
    Request req;
    req.target = "/.well-known/jwks.json";
    auto r = client.Call(req);
    auto now = Now();
    std::optional<jwt::KeySet> parsed;
    std::string error = r.error;
    if (r.outcome == Outcome::kValid) {
      auto set = jwt::KeySet::FromJwks(r.body);
      if (set.ok()) {
        parsed.emplace(std::move(set).value());
      } else {
        error = "bad JWKS: " + set.error().message();
      }
    }
    std::lock_guard lock(mutex);
    last_attempt = now;
    last_fetch_ok = parsed.has_value();
    if (!parsed) {
      ++stats.fetch_failures;
      return false;
    }
    int64_t max_age = CacheControlMaxAge(r.Header("Cache-Control").value_or(""));
    auto age = max_age < 0 ? options.default_max_age : std::chrono::seconds(max_age);
    age = std::clamp(age, options.min_max_age, options.max_max_age);
    keys = std::make_shared<const jwt::KeySet>(std::move(*parsed));
    expires_at = now + age;
    ++stats.fetches;
    stats.keys = keys->size();
    stats.have_keys = true;
    return true;
  }
};

TokenValidator::TokenValidator(Client& client, TokenValidatorOptions options)
    : impl_(new Impl{client, std::move(options)}) {}

TokenValidator::~TokenValidator() = default;

bool TokenValidator::Prefetch() {
  std::lock_guard fetch(impl_->fetch_mutex);
  return impl_->Fetch();
}

JwksCacheStats TokenValidator::Stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

LocalValidation TokenValidator::Validate(const std::string& token) {
  LocalValidation out;
  auto kid = jwt::PeekKid(token);
  if (!kid.ok()) {
    out.outcome = Outcome::kInvalid;
    out.error = kid.error().message();
    return out;
  }
  Impl& d = *impl_;
  auto now = d.Now();
  std::shared_ptr<const jwt::KeySet> keys;
  bool stale = false;
  bool recent = false;
  {
    std::lock_guard lock(d.mutex);
    keys = d.keys;
    stale = keys == nullptr || now >= d.expires_at;
    recent = d.RecentAttempt(now);
  }
  bool unknown = keys == nullptr || !keys->Contains(*kid);
  if (unknown) {
    // Needed now: wait for a fetch in progress, then fetch unless one just happened.
    std::lock_guard fetch(d.fetch_mutex);
    {
      std::lock_guard lock(d.mutex);
      keys = d.keys;
      recent = d.RecentAttempt(now);
    }
    if (keys == nullptr || !keys->Contains(*kid)) {
      if (!recent) {
        {
          std::lock_guard lock(d.mutex);
          ++d.stats.unknown_kid_refetches;
        }
        d.Fetch();
      } else {
        std::lock_guard lock(d.mutex);
        ++d.stats.refetches_suppressed;
      }
      std::lock_guard lock(d.mutex);
      keys = d.keys;
    }
  } else if (stale && !recent) {
    // Refresh in the background of this call; if another thread is fetching, go on.
    std::unique_lock fetch(d.fetch_mutex, std::try_to_lock);
    if (fetch.owns_lock()) {
      d.Fetch();  // on failure the cached keys stay in use
      std::lock_guard lock(d.mutex);
      keys = d.keys;
    }
  }

  if (keys == nullptr) {
    out.outcome = Outcome::kUnavailable;
    out.error = "no JWKS yet and Bulwark is unavailable";
    return out;
  }
  if (!keys->Contains(*kid)) {
    std::lock_guard lock(d.mutex);
    // Only a fresh key set that lacks the kid proves the token bad.
    out.outcome = d.last_fetch_ok ? Outcome::kInvalid : Outcome::kUnavailable;
    out.error = d.last_fetch_ok ? "unknown kid" : "unknown kid and the JWKS cannot be refetched";
    return out;
  }
  jwt::ValidationOptions vo;
  vo.issuer = d.options.issuer;
  vo.audience = d.options.audience;
  vo.now = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  vo.leeway_seconds = d.options.leeway.count();
  auto claims = jwt::Validate(token, *keys, vo);
  if (!claims.ok()) {
    out.outcome = Outcome::kInvalid;
    out.error = claims.error().message();
    return out;
  }
  out.outcome = Outcome::kValid;
  auto& c = claims.value();
  out.claims = TokenClaims{c.iss,      c.sub, c.jti,   c.client_id, c.scope,
                           c.username, c.aud, c.roles, c.exp,       c.iat};
  return out;
}

}  // namespace bulwark::client
