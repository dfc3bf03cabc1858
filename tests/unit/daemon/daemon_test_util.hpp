// Helpers the daemon unit tests share: a temp dir removed at scope end, and
// address literals.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "portsentry/net/address.hpp"

namespace pstest {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/ps-daemon-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

inline portsentry::net::Cidr cidr(const std::string& s) { return *portsentry::net::Cidr::parse(s); }
inline portsentry::net::IpAddr ip(const std::string& s) { return *portsentry::net::IpAddr::parse(s); }

}  // namespace pstest
