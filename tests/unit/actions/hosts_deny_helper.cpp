// Test helper: HostsDenyFile in a separate process, so a test can run it
// inside a private mount namespace (`unshare -m`) with hosts.deny bind-mounted
// over — unshare(CLONE_NEWNS) is refused to the multi-threaded test binary.
// Usage: hosts_deny_helper PATH LINE [remove] → prints "added", "present" or
// "failed: WHY"; with `remove` and a line it added, then ends the ban and runs the clean-up, and
// prints "removed-in-place", "removed" or "failed: WHY". Exit 0 unless failed.
#include <cstdio>
#include <cstring>

#include "portsentry/actions/hosts_deny.hpp"

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) return 2;
    using portsentry::actions::HostsDenyResult;
    portsentry::actions::HostsDenyFile f(argv[1]);
    const auto ip = *portsentry::net::IpAddr::parse("198.51.100.2");
    auto r = f.add(argv[2], ip, std::nullopt);
    switch (r.status) {
        case HostsDenyResult::Status::added: std::puts("added"); break;
        case HostsDenyResult::Status::already_present: std::puts("present"); break;
        case HostsDenyResult::Status::failed: std::printf("failed: %s\n", r.error.c_str()); return 1;
    }
    if (argc == 4 && std::strcmp(argv[3], "remove") == 0 && r.status == HostsDenyResult::Status::added) {
        f.ended(ip);
        if (auto err = f.maintain(std::chrono::steady_clock::now()); !err.empty()) {
            std::printf("failed: %s\n", err.c_str());
            return 1;
        }
        std::puts(f.counters().rewrites_in_place.value() > 0 ? "removed-in-place" : "removed");
    }
    return 0;
}
