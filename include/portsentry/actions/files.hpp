// History and blocked files (hosts.deny: hosts_deny.hpp).
//
// History and blocked files are only ever appended (O_APPEND|O_NOFOLLOW), never
// renamed: fail2ban follows them by inode and a rename would look like a
// rotation.
#pragma once

#include <string>
#include <string_view>

#include "portsentry/base/files.hpp"
#include "portsentry/base/unique_fd.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::actions {

// An append-only text file opened O_WRONLY|O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC,
// mode 0600. A symlink (or anything but a regular file) at `path` is refused.
// Opened lazily on the first append and kept open; reopen() for logrotate (SIGHUP).
class AppendFile {
public:
    explicit AppendFile(std::string path);

    // Appends `data` with one write() (atomic for O_APPEND on a regular file,
    // so concurrent writers never interleave inside a record).
    // Returns "" on success or the reason (errno text, "is a symlink", ...).
    std::string append(std::string_view data);
    // Closes and opens `path` again (returns "" or the reason).
    std::string reopen();
    void close();
    const std::string& path() const { return path_; }
    bool is_open() const { return fd_.valid(); }

private:
    std::string open();
    std::string path_;
    base::UniqueFd fd_;
};

// BLOCKED_FILE + "." + mode ("atcp", "audp", "stcp", "sudp", "tcp", "udp"), as 1.2.
std::string blocked_file_path(const std::string& blocked_file, std::string_view mode);

// Whether `ip` appears as the address of a record ("Host: H/IP Port: ...") in a
// history/blocked file. Matches the address field exactly (1.2's IsBlocked()
// matched substrings, so 192.0.2.1 also hit 192.0.2.10). A missing file → false.
bool blocked_file_contains(const std::string& path, const net::IpAddr& ip);

}  // namespace portsentry::actions
