// Telling systemd the truth (sd_notify(3)): READY=1 once the table is loaded
// and the queue bound, STATUS= with what `status` would say in one line,
// RELOADING=1 ... READY=1 around a reload, STOPPING=1 on SIGTERM, and
// WATCHDOG=1 sent from the daemon's own loop, so a wedged packet loop stops
// the pings and systemd restarts the service (WatchdogSec= in the unit).
// Outside systemd (no NOTIFY_SOCKET) every call is a no-op.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "portsentry/daemon/loop.hpp"

namespace portsentry::daemon {

class SystemdNotifier {
public:
    // Reads WATCHDOG_USEC/WATCHDOG_PID (sd_watchdog_enabled) and, when the
    // watchdog is on, registers a timer with `loop` that pings at half the
    // interval (systemd's advice) if the loop completed a turn since the last
    // ping. Throws std::system_error if the timer cannot be made.
    explicit SystemdNotifier(Loop& loop);
    ~SystemdNotifier();
    SystemdNotifier(const SystemdNotifier&) = delete;
    SystemdNotifier& operator=(const SystemdNotifier&) = delete;

    void ready(const std::string& status);
    void status(const std::string& text);
    void reloading();
    // After a reload: READY=1 and the status line. `refused` (FILE:LINE:
    // message) is kept in every later STATUS= until a reload succeeds, so
    // `systemctl status` shows why the last reload failed.
    void reloaded(const std::string& status, const std::string& refused = {});
    void stopping();

    bool under_systemd() const { return under_systemd_; }
    std::chrono::microseconds watchdog_interval() const { return watchdog_; }
    uint64_t pings() const { return pings_; }

private:
    void send(const std::string& state);
    void on_timer();
    Loop& loop_;
    bool under_systemd_ = false;
    std::chrono::microseconds watchdog_{0};
    int timer_fd_ = -1;
    uint64_t last_turns_ = 0, pings_ = 0;
    std::string last_status_, refused_;
};

}  // namespace portsentry::daemon
