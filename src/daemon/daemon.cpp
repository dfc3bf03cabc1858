#include "portsentry/daemon/daemon.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>

#include "portsentry/actions/validate.hpp"
#include "portsentry/daemon/service.hpp"

namespace portsentry::daemon {

namespace {

enum : uint64_t { kSignal = 1, kTimer, kPackets, kControl, kMonitor, kProtectBase = 500, kTripwireBase = 1000 };

const char* turn_name(uint64_t tag) {
    switch (tag) {
        case kSignal: return "signal";
        case kTimer: return "tick";
        case kPackets: return "packets";
        case kControl: return "control command";
        case kMonitor: return "nftables monitor";
        default: return tag >= kTripwireBase ? "tripwire" : "protection sources";
    }
}

std::system_error sys_error(const std::string& what) { return std::system_error(errno, std::generic_category(), what); }

// Owns one fd.
struct Fd {
    int fd = -1;
    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
    Fd& operator=(Fd&& o) noexcept {
        std::swap(fd, o.fd);
        return *this;
    }
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};

}  // namespace

std::vector<net::Cidr> local_addresses() {
    std::vector<net::Cidr> out;
    ifaddrs* ifa = nullptr;
    if (::getifaddrs(&ifa) < 0) return out;
    for (auto* p = ifa; p; p = p->ifa_next) {
        if (!p->ifa_addr) continue;
        if (p->ifa_addr->sa_family == AF_INET) {
            auto* sin = reinterpret_cast<sockaddr_in*>(p->ifa_addr);
            out.push_back(net::Cidr::host(net::IpAddr::from_bytes(AF_INET, reinterpret_cast<uint8_t*>(&sin->sin_addr))));
        } else if (p->ifa_addr->sa_family == AF_INET6) {
            auto* sin6 = reinterpret_cast<sockaddr_in6*>(p->ifa_addr);
            out.push_back(
                net::Cidr::host(net::IpAddr::from_bytes(AF_INET6, reinterpret_cast<uint8_t*>(&sin6->sin6_addr))));
        }
    }
    ::freeifaddrs(ifa);
    return out;
}

config::Config load_config(const Options& o) {
    // PORT_BANNER and command templates are checked by config::load, with their line.
    auto cfg = config::load(o.config_path, o.load);
    if (o.dry_run) cfg.dry_run = true;
    if (o.ban_time) cfg.ban_time = *o.ban_time;
    if (o.steer) cfg.steer = *o.steer;
    if (o.state_file) cfg.state_file = *o.state_file;
    if (o.control_socket) cfg.control_socket = *o.control_socket;
    return cfg;
}

int run(const Options& o) {
    // Block the signals we handle through signalfd before any thread starts
    // (the resolver's workers inherit the mask).
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, s);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) < 0) throw sys_error("sigprocmask");
    ::signal(SIGPIPE, SIG_IGN);

    Service svc(o);
    Fd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (sfd.fd < 0) throw sys_error("signalfd");
    Fd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (tfd.fd < 0) throw sys_error("timerfd_create");
    // One housekeeping tick per second: expiry, child reaping, state save,
    // and a fallback check that our table still exists (the nftables
    // monitor normally reports its removal at once).
    itimerspec its{{1, 0}, {1, 0}};
    ::timerfd_settime(tfd.fd, 0, &its, nullptr);

    Fd ep(::epoll_create1(EPOLL_CLOEXEC));
    if (ep.fd < 0) throw sys_error("epoll_create1");
    auto add = [&](int fd, uint64_t tag) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (::epoll_ctl(ep.fd, EPOLL_CTL_ADD, fd, &ev) < 0) throw sys_error("epoll_ctl");
    };
    add(sfd.fd, kSignal);
    add(tfd.fd, kTimer);
    add(svc.source_fd(), kPackets);
    add(svc.control_fd(), kControl);
    if (svc.monitor_fd() >= 0) add(svc.monitor_fd(), kMonitor);
    int source_fd = svc.source_fd();
    auto protect = svc.protect_fds();
    for (size_t i = 0; i < protect.size(); ++i) add(protect[i], kProtectBase + i);
    auto tripwires = svc.tripwire_fds();
    for (size_t i = 0; i < tripwires.size(); ++i) add(tripwires[i], kTripwireBase + i);

    svc.log_ready();
    epoll_event events[16];
    for (;;) {
        int n = ::epoll_wait(ep.fd, events, 16, svc.background_pending() ? 0 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw sys_error("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            uint64_t tag = events[i].data.u64;
            const auto t0 = std::chrono::steady_clock::now();
            // What held the loop longest: while it is busy, queued probes wait
            // and, once the queue is full, the kernel accepts them (fail-open).
            struct Timed {
                Service& svc;
                uint64_t tag;
                std::chrono::steady_clock::time_point t0;
                ~Timed() { svc.note_turn(turn_name(tag), std::chrono::steady_clock::now() - t0); }
            } timed{svc, tag, t0};
            if (tag == kPackets) {
                svc.on_packets();
            } else if (tag == kControl) {
                svc.on_control();
            } else if (tag == kMonitor) {
                svc.on_monitor();
            } else if (tag == kTimer) {
                uint64_t ticks;
                while (::read(tfd.fd, &ticks, sizeof ticks) > 0) {
                }
                svc.on_tick();
            } else if (tag == kSignal) {
                signalfd_siginfo si;
                while (::read(sfd.fd, &si, sizeof si) == sizeof si) {
                    switch (si.ssi_signo) {
                        case SIGHUP:
                            svc.reload();
                            // A reload may rebind the queue (queue_num changed).
                            if (svc.source_fd() != source_fd) {
                                ::epoll_ctl(ep.fd, EPOLL_CTL_DEL, source_fd, nullptr);
                                source_fd = svc.source_fd();
                                add(source_fd, kPackets);
                            }
                            break;
                        case SIGCHLD: svc.on_tick_children(); break;
                        case SIGTERM:
                        case SIGINT: svc.shutdown(si.ssi_signo); return 0;
                    }
                }
            } else if (tag >= kProtectBase && tag < kTripwireBase) {
                svc.on_protect(protect.at(tag - kProtectBase));
            } else if (tag >= kTripwireBase) {
                svc.on_tripwire(tag - kTripwireBase);
            }
        }
        if (svc.background_pending()) {
            const auto t0 = std::chrono::steady_clock::now();
            svc.on_background();
            svc.note_turn("state serializing", std::chrono::steady_clock::now() - t0);
        }
    }
}

}  // namespace portsentry::daemon
