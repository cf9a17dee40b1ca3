// The `bulwark` command line: serve, migrate, user, role, version.
#pragma once

namespace bulwark::cli {

// Runs the command line; returns the process exit code (0 ok, 1 failure, 2 usage/config error).
int Main(int argc, char** argv);

}  // namespace bulwark::cli
