#include "drill/load.hpp"

#include <boost/json.hpp>

#include "bulwark/client/client.hpp"
#include "bulwark/client/token_validator.hpp"
#include "tests/support/http_client.hpp"

namespace bulwark::drill {

namespace {

using testing::HttpRequest;
using testing::HttpResult;

constexpr int kMaxCyclesPerUser = 1'000'000;  // a bound even if Stop() never came

Outcome Classify(const HttpResult& r, int expected) {
  if (r.status == expected) return Outcome::kOk;
  if (r.status == 0) return Outcome::kConnection;
  if (r.status >= 500) return Outcome::kServerError;
  if (r.status == 401) return Outcome::kUnexpected401;
  return Outcome::kOther;
}

std::string Field(const std::string& body, const char* key) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const auto* f = v.as_object().if_contains(key);
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

double MsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t).count();
}

std::string Describe(const HttpResult& r) {
  std::string out = std::to_string(r.status);
  if (!r.error.empty()) out += " " + r.error;
  if (!r.body.empty()) out += " " + r.body.substr(0, 120);
  return out;
}

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kConnection:
      return "connection_refused_or_reset";
    case Outcome::kServerError:
      return "5xx";
    case Outcome::kUnexpected401:
      return "unexpected_401";
    case Outcome::kRefreshRejected:
      return "refresh_rejected";
    case Outcome::kOther:
      return "other";
  }
  return "other";
}

double Recorder::Now() const {
  return std::chrono::duration<double>(SteadyClock::now() - start_).count();
}

void Recorder::Request(const std::string& endpoint, Outcome outcome, double latency_ms,
                       const std::string& detail) {
  const double at = Now();
  std::lock_guard lock(mu_);
  ++total_;
  ++requests_[endpoint][OutcomeName(outcome)];
  latencies_[endpoint].push_back(latency_ms);
  if (outcome != Outcome::kOk) failures_.push_back(Failure{at, endpoint, outcome, detail});
}

void Recorder::SessionLost(const std::string& detail) {
  std::lock_guard lock(mu_);
  ++sessions_lost_;
  if (lost_details_.size() < 20) lost_details_.push_back(detail);
}

void Recorder::FamilyBroken(const std::string& detail) {
  std::lock_guard lock(mu_);
  ++families_broken_;
  if (lost_details_.size() < 20) lost_details_.push_back("refresh family: " + detail);
}

void Recorder::ClientCall(bool ok, const std::string& detail) {
  std::lock_guard lock(mu_);
  ++client_calls_;
  if (ok) return;
  ++client_failures_;
  if (client_failure_details_.size() < 20) client_failure_details_.push_back(detail);
}

Recorder::Snapshot Recorder::Take() const {
  std::lock_guard lock(mu_);
  Snapshot s;
  s.requests = requests_;
  s.latencies_ms = latencies_;
  s.failures = failures_;
  s.total = total_;
  s.sessions_created = sessions_created_.load();
  s.sessions_verified = sessions_verified_.load();
  s.sessions_lost = sessions_lost_;
  s.families_broken = families_broken_;
  s.client_calls = client_calls_;
  s.client_failures = client_failures_;
  s.lost_details = lost_details_;
  s.client_failure_details = client_failure_details_;
  return s;
}

void Load::Start() {
  for (int i = 0; i < options_.users; ++i) threads_.emplace_back([this, i] { RunUser(i); });
  threads_.emplace_back([this] { RunClientApp(); });
}

void Load::Stop() {
  stop_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Load::Pace(SteadyClock::time_point& next) const {
  if (options_.rate_per_user <= 0) return;
  next += std::chrono::duration_cast<SteadyClock::duration>(
      std::chrono::duration<double>(1.0 / options_.rate_per_user));
  const auto now = SteadyClock::now();
  if (next < now) next = now;  // behind: do not burst to catch up
  std::this_thread::sleep_until(next);
}

// One virtual user: login, verify many times, refresh, validate the new JWT
// locally, log out — through HAProxy — again and again.
void Load::RunUser(int index) {
  const int port = options_.haproxy_port;
  client::ClientOptions jwks_options;
  jwks_options.base_urls = {"http://127.0.0.1:" + std::to_string(port)};
  client::Client jwks_client(jwks_options);
  client::TokenValidatorOptions validator_options;
  validator_options.issuer = options_.issuer;
  client::TokenValidator validator(jwks_client, validator_options);
  const std::string login_body =
      R"({"username":")" + options_.username + R"(","password":")" + options_.password + R"("})";
  SteadyClock::time_point next = SteadyClock::now();
  for (int cycle = 0; !stop_ && cycle < kMaxCyclesPerUser; ++cycle) {
    auto t = SteadyClock::now();
    HttpResult login = HttpRequest(port, "POST", "/v1/auth/login", login_body);
    Outcome o = Classify(login, 200);
    rec_.Request("login", o, MsSince(t), o == Outcome::kOk ? "" : Describe(login));
    Pace(next);
    if (o != Outcome::kOk) continue;
    const std::string session = Field(login.body, "session_token");
    std::string refresh = Field(login.body, "refresh_token");
    rec_.SessionCreated();
    const std::vector<std::pair<std::string, std::string>> auth{
        {"Authorization", "Bearer " + session}};

    bool verified = false, alive = true;
    for (int k = 0; k < options_.verifies_per_session && !stop_; ++k) {
      t = SteadyClock::now();
      HttpResult v = HttpRequest(port, "GET", "/v1/auth/verify", "", auth);
      o = Classify(v, 200);
      rec_.Request("verify", o, MsSince(t), o == Outcome::kOk ? "" : Describe(v));
      Pace(next);
      if (o == Outcome::kOk && !verified) {
        verified = true;
        rec_.SessionVerified();
      }
      if (o == Outcome::kUnexpected401 && verified) {
        rec_.SessionLost("user " + std::to_string(index) + ": verify 401 after a 200, at " +
                         std::to_string(rec_.Now()) + " s");
        alive = false;
        break;
      }
    }
    if (!alive || stop_) continue;

    t = SteadyClock::now();
    HttpResult r =
        HttpRequest(port, "POST", "/v1/auth/refresh", R"({"refresh_token":")" + refresh + R"("})");
    // 400/401 (invalid_grant): the live token's family is broken.
    const bool rejected = r.status == 400 || r.status == 401;
    o = rejected ? Outcome::kRefreshRejected : Classify(r, 200);
    rec_.Request("refresh", o, MsSince(t), o == Outcome::kOk ? "" : Describe(r));
    Pace(next);
    if (rejected) rec_.FamilyBroken(Describe(r));
    if (o == Outcome::kOk) {
      t = SteadyClock::now();
      client::LocalValidation local = validator.Validate(Field(r.body, "access_token"));
      const bool valid = local.outcome == client::Outcome::kValid;
      rec_.Request("jwt_local", valid ? Outcome::kOk : Outcome::kOther, MsSince(t), local.error);
    }

    t = SteadyClock::now();
    HttpResult out = HttpRequest(port, "POST", "/v1/auth/logout", "", auth);
    o = Classify(out, 204);
    rec_.Request("logout", o, MsSince(t), o == Outcome::kOk ? "" : Describe(out));
    Pace(next);
  }
}

// An application that talks to the replicas directly through libbulwark-client:
// its retries, breakers and failover are what it relies on (SPEC §3).
void Load::RunClientApp() {
  client::ClientOptions options;
  for (int port : options_.replica_ports) {
    options.base_urls.push_back("http://127.0.0.1:" + std::to_string(port));
  }
  options.retry.call_deadline = std::chrono::milliseconds(15000);
  client::Client client(options);
  SteadyClock::time_point next = SteadyClock::now();
  for (int cycle = 0; !stop_ && cycle < kMaxCyclesPerUser; ++cycle) {
    client::LoginResult login = client.Login(options_.username, options_.password);
    rec_.ClientCall(login.outcome == client::Outcome::kValid,
                    "at " + std::to_string(rec_.Now()) + " s: login: " + login.error);
    Pace(next);
    if (login.outcome != client::Outcome::kValid) continue;
    for (int k = 0; k < options_.verifies_per_session && !stop_; ++k) {
      client::VerifyResult v = client.VerifySession(login.session_token);
      rec_.ClientCall(v.outcome == client::Outcome::kValid,
                      "at " + std::to_string(rec_.Now()) + " s: verify: " + v.error);
      Pace(next);
    }
    std::string error;
    client::Outcome out = client.Logout(login.session_token, &error);
    rec_.ClientCall(out == client::Outcome::kValid,
                    "at " + std::to_string(rec_.Now()) + " s: logout: " + error);
    Pace(next);
  }
}

}  // namespace bulwark::drill
