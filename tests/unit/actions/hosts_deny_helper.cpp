// Test helper: hosts_deny_add() in a separate process, so a test can run it
// inside a private mount namespace (`unshare -m`) with hosts.deny bind-mounted
// over — unshare(CLONE_NEWNS) is refused to the multi-threaded test binary.
// Usage: hosts_deny_helper PATH LINE → prints "added", "added-in-place",
// "present" or "failed: WHY"; exit 0 unless failed.
#include <cstdio>

#include "portsentry/actions/files.hpp"

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    using portsentry::actions::HostsDenyResult;
    auto r = portsentry::actions::hosts_deny_add(argv[1], argv[2]);
    switch (r.status) {
        case HostsDenyResult::Status::added:
            std::puts(r.appended_in_place ? "added-in-place" : "added");
            return 0;
        case HostsDenyResult::Status::already_present: std::puts("present"); return 0;
        case HostsDenyResult::Status::failed: std::printf("failed: %s\n", r.error.c_str()); return 1;
    }
    return 1;
}
