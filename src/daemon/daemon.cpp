#include "portsentry/daemon/daemon.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>

#include <cerrno>
#include <iostream>
#include <system_error>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"
#include "portsentry/daemon/service.hpp"

namespace portsentry::daemon {


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

void prepare_directories(const config::Config& c) {
    for (const std::string* f : {&c.state_file, &c.history_file, &c.blocked_file, &c.json_log})
        if (!f->empty()) base::make_directories(base::dir_of(*f), 0700);
}

int run(const Options& o) {
    // Block the signals the service reads through signalfd before any
    // thread starts (the resolver's and state writer's threads inherit it).
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGHUP, SIGTERM, SIGINT, SIGCHLD}) sigaddset(&mask, s);
    if (::sigprocmask(SIG_BLOCK, &mask, nullptr) < 0) throw base::sys_error("sigprocmask");
    ::signal(SIGPIPE, SIG_IGN);
    Service svc(o);
    // The table is loaded: from now on, losing these files is refused (config_path.hpp).
    if (auto err = remember_config(o.resolved); !err.empty()) std::cerr << "portsentry-nfq: warning: " << err << "\n";
    return svc.run();
}

}  // namespace portsentry::daemon
