// History, blocked and hosts.deny files.
//
// History and blocked files are only ever appended (O_APPEND|O_NOFOLLOW), never
// renamed: fail2ban follows them by inode and a rename would look like a
// rotation. hosts.deny is rewritten through a temp file + rename so readers
// (tcpd, sshd via libwrap) never see half a line.
#pragma once

#include <functional>
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

// --- hosts.deny ---------------------------------------------------------------
struct HostsDenyResult {
    enum class Status { added, already_present, failed } status = Status::failed;
    bool appended_in_place = false;  // rename() gave EBUSY: appended under flock instead
    std::string error;               // when failed: what and why
};

// rename(2) by default; injectable so tests can simulate EBUSY.
using RenameFn = base::RenameFn;

// Adds `line` (no trailing newline) to the hosts.deny file at `path` unless an
// identical line is already there. Under an exclusive flock on the file:
// read it, write old content + line to a temp file in the same directory,
// fsync, rename over `path`, fsync the directory. If rename fails with EBUSY
// (a bind-mounted /etc/hosts.deny in a container or test namespace) the line
// is appended in place instead — never lost. Refuses a symlink or non-regular
// file at `path`. Creates the file (0644) when missing.
HostsDenyResult hosts_deny_add(const std::string& path, std::string_view line,
                               const RenameFn& rename_fn = {});

}  // namespace portsentry::actions
