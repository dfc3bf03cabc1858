#include "portsentry/daemon/cli.hpp"
int portsentry::daemon::cli_main(int, char**) { return 1; }
