#include "portsentry/daemon/notify.hpp"

#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace portsentry::daemon {

SystemdNotifier::SystemdNotifier(Loop& loop) : loop_(loop) {
    const char* sock = std::getenv("NOTIFY_SOCKET");
    under_systemd_ = sock && *sock;
    uint64_t usec = 0;
    // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is us:
    // a KILL_RUN_CMD child that inherits the variables is not the watched one.
    if (under_systemd_ && ::sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        watchdog_ = std::chrono::microseconds(usec);
        timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (timer_fd_ < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create (watchdog)");
        // Half the interval, as sd_watchdog_enabled(3) advises: one late
        // ping is not yet a restart.
        const uint64_t half = usec / 2;
        itimerspec its{};
        its.it_interval.tv_sec = static_cast<time_t>(half / 1000000);
        its.it_interval.tv_nsec = static_cast<long>(half % 1000000) * 1000;
        its.it_value = its.it_interval;
        ::timerfd_settime(timer_fd_, 0, &its, nullptr);
        last_turns_ = loop_.timing().turns.value();
        loop_.add(timer_fd_, "watchdog", [this](const Now&) { on_timer(); });
    }
}

SystemdNotifier::~SystemdNotifier() {
    if (timer_fd_ >= 0) {
        loop_.remove(timer_fd_);
        ::close(timer_fd_);
    }
}

void SystemdNotifier::send(const std::string& state) {
    // unset_environment 0: we need NOTIFY_SOCKET for every later message.
    // KILL_RUN_CMD children inherit it, but NotifyAccess=main (the default
    // for Type=notify) makes systemd ignore anything they send.
    if (under_systemd_) ::sd_notify(0, state.c_str());
}

void SystemdNotifier::on_timer() {
    uint64_t n;
    while (::read(timer_fd_, &n, sizeof n) > 0) {
    }
    // This callback runs inside a loop turn, so the loop is dispatching; the
    // turn counter proves it completed turns since the last ping (a callback
    // stuck in the packet path keeps us from ever getting here).
    const uint64_t turns = loop_.timing().turns.value();
    if (turns == last_turns_) return;
    last_turns_ = turns;
    ++pings_;
    send("WATCHDOG=1");
}

void SystemdNotifier::ready(const std::string& status) {
    last_status_ = status;
    send("READY=1\nSTATUS=" + status);
}

void SystemdNotifier::status(const std::string& text) {
    if (text == last_status_) return;  // one datagram per change, not per tick
    last_status_ = text;
    send("STATUS=" + (refused_.empty() ? text : text + "; last reload refused: " + refused_));
}

void SystemdNotifier::reloading() {
    // systemd 252 takes RELOADING=1 as "reload in progress" until READY=1.
    send("RELOADING=1\nSTATUS=reloading");
}

void SystemdNotifier::reloaded(const std::string& status, const std::string& refused) {
    refused_ = refused;
    last_status_ = status;
    send("READY=1\nSTATUS=" + (refused_.empty() ? status : status + "; last reload refused: " + refused_));
}

void SystemdNotifier::stopping() { send("STOPPING=1\nSTATUS=stopping: table inet portsentry and its bans stay"); }

}  // namespace portsentry::daemon
