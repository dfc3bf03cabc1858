// Test helper: writes argv[1] through actions::Log with syslog on, so a test
// can run it in a mount namespace whose /dev/log is the test's own socket and
// check ident, facility, level and LOG_PID on the wire.
#include "portsentry/actions/log.hpp"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    portsentry::actions::Log log(portsentry::actions::LogOptions{true, false, 10, 10});
    log.write(argv[1]);
    return 0;
}
