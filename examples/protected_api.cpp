// protected_api: how an application checks a caller's credential with
// libbulwark-client (docs/client.md).
//
//   protected_api --bulwark http://10.0.0.1:8080,http://10.0.0.2:8080
//                 [--issuer ISS] [--audience AUD] TOKEN...
//
// A JWT access token is validated locally from the cached JWKS (no call to
// Bulwark per token, and it keeps working while Bulwark is down); anything else
// (a session token), or a JWT when no key set could ever be fetched, is
// checked with GET /v1/auth/verify through retries, breakers and failover.
// One line per token: "<outcome> <how> <subject> [roles]".
// Exit status: 0 every token valid, 1 some token invalid, 2 Bulwark unavailable
// for some token (and none invalid), 64 usage.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bulwark/client/client.hpp"
#include "bulwark/client/token_validator.hpp"

namespace {

using bulwark::client::Outcome;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  for (char c : s) {
    if (c == sep) {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

int Usage() {
  std::fprintf(stderr,
               "usage: protected_api --bulwark URL[,URL...] [--issuer ISS] [--audience AUD] "
               "TOKEN...\n");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  bulwark::client::ClientOptions options;
  bulwark::client::TokenValidatorOptions validation;
  std::vector<std::string> tokens;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    bool has_value = i + 1 < argc;
    if (arg == "--bulwark" && has_value) {
      options.base_urls = Split(argv[++i], ',');
    } else if (arg == "--issuer" && has_value) {
      validation.issuer = argv[++i];
    } else if (arg == "--audience" && has_value) {
      validation.audience = argv[++i];
    } else if (arg.rfind("--", 0) == 0) {
      return Usage();
    } else {
      tokens.push_back(arg);
    }
  }
  if (options.base_urls.empty() || tokens.empty()) return Usage();
  if (validation.issuer.empty()) validation.issuer = options.base_urls.front();
  // A command-line tool should not wait long for a dead Bulwark.
  options.retry.max_attempts = 4;
  options.retry.call_deadline = std::chrono::milliseconds(3000);

  try {
    bulwark::client::Client client(options);
    bulwark::client::TokenValidator validator(client, validation);
    bool invalid = false, unavailable = false;
    for (const auto& token : tokens) {
      Outcome outcome = Outcome::kUnavailable;
      std::string how, subject, roles, error;
      if (bulwark::client::LooksLikeJwt(token)) {
        auto local = validator.Validate(token);
        outcome = local.outcome;
        how = "local-jwt";
        subject = local.claims.username.empty() ? local.claims.sub : local.claims.username;
        roles = Join(local.claims.roles);
        error = local.error;
      }
      if (how.empty() || outcome == Outcome::kUnavailable) {
        auto remote = client.VerifySession(token);
        if (how.empty() || remote.outcome != Outcome::kUnavailable) {
          outcome = remote.outcome;
          how = "bulwark-verify";
          subject = remote.identity.user;
          roles = Join(remote.identity.roles);
          error = remote.error;
        }
      }
      std::printf("%s %s %s %s\n", bulwark::client::OutcomeName(outcome), how.c_str(),
                  subject.empty() ? "-" : subject.c_str(), roles.empty() ? "-" : roles.c_str());
      if (outcome != Outcome::kValid && !error.empty()) std::fprintf(stderr, "%s\n", error.c_str());
      invalid |= outcome == Outcome::kInvalid;
      unavailable |= outcome == Outcome::kUnavailable;
    }
    std::fflush(stdout);
    return invalid ? 1 : unavailable ? 2 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "protected_api: %s\n", e.what());
    return 64;
  }
}
