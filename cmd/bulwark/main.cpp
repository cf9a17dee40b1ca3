// bulwark: parse the subcommand and hand over to cli/.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return bulwark::cli::Main(argc, argv); }
