#include "cli/cli.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "app/application.hpp"
#include "app/stores_factory.hpp"
#include "app/version.hpp"
#include "config/config.hpp"
#include "core/clock.hpp"
#include "crypto/password_hasher.hpp"
#include "crypto/tokens.hpp"
#include "log/logger.hpp"
#include "service/admin_service.hpp"
#include "service/key_service.hpp"
#include "service/oauth_service.hpp"

namespace bulwark::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Flag values of the serve settings, keyed by environment variable name.
using FlagValues = std::map<std::string, std::string>;

int Fail(const Error& error) {
  std::cerr << "bulwark: " << error.message() << "\n";
  return error.code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

log::Format ToLogFormat(LogFormatSetting f) {
  return f == LogFormatSetting::kText ? log::Format::kText : log::Format::kJson;
}

// Admin commands share this: configuration (env + --data-dir), stores, service.
class AdminRuntime {
 public:
  static Result<std::unique_ptr<AdminRuntime>> Open(const FlagValues& flags) {
    auto config = LoadServeConfig(ProcessEnvironment(), flags);
    if (!config.ok()) return config.error();
    log::Init(log::Format::kText, config->replica_id, log::Level::kWarn);
    InitCrypto();
    auto sealer = KeySealerFrom(*config);
    if (!sealer.ok()) return sealer.error();
    auto stores = OpenStores(*config);
    if (!stores.ok()) return stores.error();
    return std::unique_ptr<AdminRuntime>(
        new AdminRuntime(*config, std::move(*stores), std::move(*sealer)));
  }
  AdminService& admin() { return admin_; }
  KeyService& keys() { return keys_; }
  ClientStore& clients() { return *stores_.clients; }

 private:
  AdminRuntime(const ServeConfig& config, Stores stores, std::shared_ptr<const KeySealer> sealer)
      : stores_(std::move(stores)),
        hasher_(Argon2Params{config.argon2_iterations, config.argon2_memory_kib}),
        admin_(*stores_.users, *stores_.roles, *stores_.config, *stores_.sessions, hasher_, clock_),
        keys_(*stores_.signing_keys, clock_, KeyOptionsFrom(config), std::move(sealer)) {}

  Stores stores_;
  SystemClock clock_;
  PasswordHasher hasher_;
  AdminService admin_;
  KeyService keys_;
};

Result<std::string> ReadPasswordFromStdin() {
  std::string password;
  if (!std::getline(std::cin, password)) {
    return Error::InvalidArgument("--password-stdin: no password on standard input");
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  return password;
}

void AddDataDir(CLI::App* cmd, FlagValues& flags) {
  cmd->add_option_function<std::string>(
         "--data-dir", [&flags](const std::string& v) { flags["BULWARK_DATA_DIR"] = v; },
         "Embedded database directory (env BULWARK_DATA_DIR, default ./bulwark-data)")
      ->type_name("DIR");
}

std::string JoinRoles(const std::vector<std::string>& roles) {
  std::string out;
  for (const auto& r : roles) out += (out.empty() ? "" : ",") + r;
  return out.empty() ? "-" : out;
}

// Runs `fn(admin)` with an opened runtime, mapping errors to exit codes.
template <typename Fn>
int WithAdmin(const FlagValues& flags, Fn fn) {
  auto runtime = AdminRuntime::Open(flags);
  if (!runtime.ok()) return Fail(runtime.error());
  return fn((*runtime)->admin());
}

// Runs `fn(clients)` with an opened runtime.
template <typename Fn>
int WithClients(const FlagValues& flags, Fn fn) {
  auto runtime = AdminRuntime::Open(flags);
  if (!runtime.ok()) return Fail(runtime.error());
  return fn((*runtime)->clients());
}

// Runs `fn(keys)` with an opened runtime (loads or bootstraps the keys first).
template <typename Fn>
int WithKeys(const FlagValues& flags, Fn fn) {
  auto runtime = AdminRuntime::Open(flags);
  if (!runtime.ok()) return Fail(runtime.error());
  if (Status st = (*runtime)->keys().Refresh(); !st.ok()) return Fail(st.error());
  return fn((*runtime)->keys());
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"Bulwark: an authentication service that survives pod evictions.", "bulwark"};
  app.require_subcommand(1);
  app.set_version_flag("--version", kVersion);
  FlagValues flags;
  int exit_code = kExitOk;

  // serve: every setting has an environment variable and a flag.
  CLI::App* serve = app.add_subcommand("serve", "Run the HTTP service (SPEC §3)");
  serve->footer(
      "Every flag has an environment variable (shown in brackets); the flag wins.\n"
      "Bad values print one line naming the variable and exit with status 2.");
  for (const SettingSpec& spec : ServeSettings()) {
    std::string env = spec.env;
    serve
        ->add_option_function<std::string>(
            spec.flag, [&flags, env](const std::string& v) { flags[env] = v; },
            spec.help + " [" + spec.env + "]")
        ->type_name("");
  }
  serve->callback([&] {
    auto config = LoadServeConfig(ProcessEnvironment(), flags);
    if (!config.ok()) {
      exit_code = Fail(config.error());
      return;
    }
    log::Init(ToLogFormat(config->log_format), config->replica_id);
    exit_code = Application(*config).Run();
  });

  CLI::App* migrate = app.add_subcommand("migrate", "Apply pending schema migrations and exit");
  AddDataDir(migrate, flags);
  migrate->callback([&] {
    auto config = LoadServeConfig(ProcessEnvironment(), flags);
    if (!config.ok()) {
      exit_code = Fail(config.error());
      return;
    }
    auto version = MigrateStores(*config);
    if (!version.ok()) {
      exit_code = Fail(version.error());
      return;
    }
    std::cout << "schema version " << *version << "\n";
  });

  // user add/list/passwd/disable/delete
  CLI::App* user = app.add_subcommand("user", "Manage users");
  user->require_subcommand(1);
  std::string username, email, role_name, permissions;
  std::vector<std::string> roles;
  bool password_stdin = false, enable = false, json_out = false;

  CLI::App* user_add = user->add_subcommand("add", "Create a user");
  user_add->add_option("--username", username, "Login name")->required();
  user_add->add_flag("--password-stdin", password_stdin, "Read the password from standard input")
      ->required();
  user_add->add_option("--email", email, "E-mail address");
  user_add->add_option("--role", roles, "Grant this role (repeatable; created if missing)");
  AddDataDir(user_add, flags);
  user_add->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto password = ReadPasswordFromStdin();
      if (!password.ok()) return Fail(password.error());
      auto created = admin.CreateUser(NewUser{username, *password, email, roles});
      if (!created.ok()) return Fail(created.error());
      std::cout << created->user.id << "\n";
      return kExitOk;
    });
  });

  CLI::App* user_list = user->add_subcommand("list", "List users");
  user_list->add_flag("--json", json_out, "One JSON object per line");
  AddDataDir(user_list, flags);
  user_list->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto users = admin.ListUsers();
      if (!users.ok()) return Fail(users.error());
      for (const auto& v : *users) {
        if (json_out) {
          std::cout << "{\"id\":\"" << v.user.id << "\",\"username\":\"" << v.user.username
                    << "\",\"disabled\":" << (v.user.disabled ? "true" : "false") << ",\"roles\":\""
                    << JoinRoles(v.roles) << "\"}\n";
        } else {
          std::cout << v.user.id << "  " << v.user.username << "  roles=" << JoinRoles(v.roles)
                    << (v.user.disabled ? "  (disabled)" : "") << "\n";
        }
      }
      return kExitOk;
    });
  });

  CLI::App* user_passwd = user->add_subcommand("passwd", "Set a user's password (ends sessions)");
  user_passwd->add_option("--username", username, "Login name")->required();
  user_passwd->add_flag("--password-stdin", password_stdin, "Read the password from standard input")
      ->required();
  AddDataDir(user_passwd, flags);
  user_passwd->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto password = ReadPasswordFromStdin();
      if (!password.ok()) return Fail(password.error());
      auto existing = admin.GetUserByUsername(username);
      if (!existing.ok()) return Fail(existing.error());
      UserUpdate update;
      update.password = *password;
      auto updated = admin.UpdateUser(existing->user.id, update);
      return updated.ok() ? kExitOk : Fail(updated.error());
    });
  });

  CLI::App* user_disable = user->add_subcommand("disable", "Disable a user and end their sessions");
  user_disable->add_option("--username", username, "Login name")->required();
  user_disable->add_flag("--enable", enable, "Enable the user again instead");
  AddDataDir(user_disable, flags);
  user_disable->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto existing = admin.GetUserByUsername(username);
      if (!existing.ok()) return Fail(existing.error());
      UserUpdate update;
      update.disabled = !enable;
      auto updated = admin.UpdateUser(existing->user.id, update);
      return updated.ok() ? kExitOk : Fail(updated.error());
    });
  });

  CLI::App* user_delete = user->add_subcommand("delete", "Delete a user and end their sessions");
  user_delete->add_option("--username", username, "Login name")->required();
  AddDataDir(user_delete, flags);
  user_delete->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto existing = admin.GetUserByUsername(username);
      if (!existing.ok()) return Fail(existing.error());
      Status st = admin.DeleteUser(existing->user.id);
      return st.ok() ? kExitOk : Fail(st.error());
    });
  });

  // role add/list/grant/revoke
  CLI::App* role = app.add_subcommand("role", "Manage roles and grants");
  role->require_subcommand(1);
  CLI::App* role_add = role->add_subcommand("add", "Create a role");
  role_add->add_option("--name", role_name, "Role name")->required();
  role_add->add_option("--permissions", permissions, "JSON array of permission strings");
  AddDataDir(role_add, flags);
  role_add->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto created = admin.CreateRole(role_name, permissions);
      if (!created.ok()) return Fail(created.error());
      std::cout << created->id << "\n";
      return kExitOk;
    });
  });

  CLI::App* role_list = role->add_subcommand("list", "List roles");
  AddDataDir(role_list, flags);
  role_list->callback([&] {
    exit_code = WithAdmin(flags, [&](AdminService& admin) {
      auto all = admin.ListRoles();
      if (!all.ok()) return Fail(all.error());
      for (const auto& r : *all) std::cout << r.name << "  " << r.permissions_json << "\n";
      return kExitOk;
    });
  });

  for (bool grant : {true, false}) {
    CLI::App* cmd = role->add_subcommand(grant ? "grant" : "revoke",
                                         grant ? "Grant a role to a user" : "Revoke a role");
    cmd->add_option("--username", username, "Login name")->required();
    cmd->add_option("--role", role_name, "Role name")->required();
    AddDataDir(cmd, flags);
    cmd->callback([&, grant] {
      exit_code = WithAdmin(flags, [&](AdminService& admin) {
        auto existing = admin.GetUserByUsername(username);
        if (!existing.ok()) return Fail(existing.error());
        Status st = grant ? admin.GrantRole(existing->user.id, role_name)
                          : admin.RevokeRole(existing->user.id, role_name);
        return st.ok() ? kExitOk : Fail(st.error());
      });
    });
  }

  // keys list/rotate
  CLI::App* keys = app.add_subcommand("keys", "Manage the access-token signing keys");
  keys->require_subcommand(1);
  CLI::App* keys_list = keys->add_subcommand("list", "List the signing keys (no private material)");
  keys_list->add_flag("--json", json_out, "One JSON object per line");
  AddDataDir(keys_list, flags);
  keys_list->callback([&] {
    exit_code = WithKeys(flags, [&](KeyService& service) {
      auto all = service.List();
      if (!all.ok()) return Fail(all.error());
      for (const auto& k : *all) {
        if (json_out) {
          std::cout << "{\"kid\":\"" << k.kid << "\",\"algorithm\":\"" << k.algorithm
                    << "\",\"state\":\"" << KeyStateName(k.state)
                    << "\",\"created_at\":" << k.created_at
                    << ",\"activated_at\":" << k.activated_at << ",\"expires_at\":" << k.expires_at
                    << "}\n";
        } else {
          std::cout << k.kid << "  " << k.algorithm << "  " << KeyStateName(k.state)
                    << "  created=" << k.created_at << "  activated=" << k.activated_at;
          if (k.state == KeyState::kRetired) std::cout << "  expires=" << k.expires_at;
          std::cout << "\n";
        }
      }
      return kExitOk;
    });
  });
  CLI::App* keys_rotate = keys->add_subcommand(
      "rotate",
      "Start a rotation: publish a new key now; it signs once every JWKS cache has it "
      "(BULWARK_JWKS_MAX_AGE + BULWARK_KEY_REFRESH_INTERVAL)");
  AddDataDir(keys_rotate, flags);
  keys_rotate->callback([&] {
    exit_code = WithKeys(flags, [&](KeyService& service) {
      auto next = service.Rotate();
      if (!next.ok()) return Fail(next.error());
      std::cout << next->kid << "  " << KeyStateName(next->state)
                << "  activates_at=" << next->activated_at << "\n";
      return kExitOk;
    });
  });

  // client add/list/delete (OAuth clients, SPEC §2)
  CLI::App* client = app.add_subcommand("client", "Manage OAuth clients");
  client->require_subcommand(1);
  std::string client_id;
  std::vector<std::string> client_grants, client_scopes;
  bool secret_stdin = false;
  CLI::App* client_add = client->add_subcommand(
      "add", "Register a client (the secret is read from stdin and stored only as a hash)");
  client_add->add_option("--id", client_id, "client_id")->required();
  client_add
      ->add_flag("--secret-stdin", secret_stdin,
                 "Read the secret (at least 32 characters) from standard input")
      ->required();
  client_add
      ->add_option("--grant", client_grants,
                   "Allowed grant (repeatable): client_credentials, refresh_token "
                   "(default client_credentials)")
      ->check(CLI::IsMember({"client_credentials", "refresh_token"}));
  client_add->add_option("--scope", client_scopes, "Allowed scope (repeatable)");
  AddDataDir(client_add, flags);
  client_add->callback([&] {
    auto secret = ReadPasswordFromStdin();
    if (!secret.ok()) {
      exit_code = Fail(Error::InvalidArgument("--secret-stdin: no secret on standard input"));
      return;
    }
    auto made = OAuthService::MakeClient(client_id, *secret, client_grants, client_scopes,
                                         SystemClock().NowUnix());
    if (!made.ok()) {
      exit_code = Fail(Error::InvalidArgument("client add: " + made.error().message()));
      return;
    }
    exit_code = WithClients(flags, [&](ClientStore& clients) {
      const OAuthClient& c = *made;
      if (Status st = clients.CreateClient(c); !st.ok()) return Fail(st.error());
      std::cout << "client " << c.id << " added\n";
      return kExitOk;
    });
  });
  CLI::App* client_list = client->add_subcommand("list", "List clients (never their secrets)");
  AddDataDir(client_list, flags);
  client_list->callback([&] {
    exit_code = WithClients(flags, [&](ClientStore& clients) {
      auto all = clients.ListClients();
      if (!all.ok()) return Fail(all.error());
      for (const auto& c : *all) {
        std::cout << c.id << "  grants=" << JoinTokens(c.grants)
                  << "  scopes=" << (c.scopes.empty() ? "-" : JoinTokens(c.scopes))
                  << (c.disabled ? "  disabled" : "") << "\n";
      }
      return kExitOk;
    });
  });
  CLI::App* client_delete = client->add_subcommand("delete", "Delete a client");
  client_delete->add_option("--id", client_id, "client_id")->required();
  AddDataDir(client_delete, flags);
  client_delete->callback([&] {
    exit_code = WithClients(flags, [&](ClientStore& clients) {
      if (Status st = clients.DeleteClient(client_id); !st.ok()) return Fail(st.error());
      std::cout << "client " << client_id << " deleted\n";
      return kExitOk;
    });
  });

  CLI::App* version = app.add_subcommand("version", "Print the version");
  version->callback([&] { std::cout << "bulwark " << kVersion << "\n"; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    app.exit(e);
    return kExitUsage;
  }
  return exit_code;
}

}  // namespace bulwark::cli
