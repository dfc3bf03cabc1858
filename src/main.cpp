#include "portsentry/daemon/cli.hpp"
int main(int argc, char** argv) { return portsentry::daemon::cli_main(argc, argv); }
