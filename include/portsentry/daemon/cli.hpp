#pragma once
namespace portsentry::daemon {
// Parses argv (legacy single-dash mode flags first), runs the command, returns the exit code.
int cli_main(int argc, char** argv);
}
