#include "portsentry/daemon/loop.hpp"

#include "portsentry/base/error.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

namespace portsentry::daemon {


Now Now::read() { return {std::chrono::steady_clock::now(), static_cast<int64_t>(std::time(nullptr))}; }

Loop::Loop() : ep_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (ep_ < 0) throw base::sys_error("epoll_create1");
}

Loop::~Loop() { ::close(ep_); }

void Loop::add(int fd, std::string name, Callback cb) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) < 0) throw base::sys_error("epoll_ctl add " + name);
    fds_[fd] = Reg{std::move(name), std::move(cb)};
}

void Loop::remove(int fd) {
    if (fds_.erase(fd) == 0) return;
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
}

void Loop::add_idle(std::string name, std::function<bool()> pending, Callback step) {
    idle_.push_back({std::move(name), std::move(pending), std::move(step)});
}

void Loop::stop() { stop_ = true; }

void Loop::timed(const std::string& name, const Callback& cb, const Now& now) {
    now_ = now;
    cb(now);
    const auto took = std::chrono::steady_clock::now() - now.steady;
    const double ms = std::chrono::duration<double, std::milli>(took).count();
    timing_.turns.inc();
    timing_.turn_ms.observe(ms);
    if (took > timing_.longest) {
        timing_.longest = took;
        timing_.longest_what = name;
        timing_.longest_ms.set(ms);
    }
    if (took > kSlowTurn) timing_.slow_turns.inc();
}

void Loop::run() {
    stop_ = false;
    epoll_event events[16];
    while (!stop_) {
        bool busy = false;
        for (const auto& i : idle_) busy = busy || i.pending();
        const int n = ::epoll_wait(ep_, events, 16, busy ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw base::sys_error("epoll_wait");
        }
        for (int i = 0; i < n && !stop_; ++i) {
            // A callback may remove this fd or others: look it up each time.
            auto it = fds_.find(events[i].data.fd);
            if (it == fds_.end()) continue;
            const Reg reg = it->second;  // a copy: the callback may re-register
            timed(reg.name, reg.cb, Now::read());
        }
        for (const auto& idle : idle_)
            if (!stop_ && idle.pending()) timed(idle.name, idle.step, Now::read());
    }
}

}  // namespace portsentry::daemon
