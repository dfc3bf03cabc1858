// Small file helpers every layer needs: a full write, the directory part of
// a path, and the atomic replace (temp file + fsync + rename) used for the
// state file and the hosts.deny rewrite (STYLE §10).
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace portsentry::base {

// Writes all of `data`, retrying on EINTR and short writes. Returns 0 or the
// errno of the write that failed. On EAGAIN (a non-blocking socket or pipe
// that is full) it waits up to `wait_writable` for room, then gives up with
// EAGAIN. Sockets are written with MSG_NOSIGNAL: a peer that went away must
// be an EPIPE for the caller, not a SIGPIPE that kills a CLI client.
int write_all(int fd, std::string_view data,
              std::chrono::milliseconds wait_writable = std::chrono::milliseconds{0}) noexcept;

// The directory part of `path`: "." when it has none, "/" for "/name".
std::string dir_of(const std::string& path);

// Makes `dir` and any missing parents with `mode` (an existing directory is
// left as it is). Throws std::system_error naming the directory that could
// not be made, or a path component that is not a directory.
void make_directories(const std::string& dir, mode_t mode = 0700);

using RenameFn = std::function<int(const char* from, const char* to)>;

struct AtomicWriteOptions {
    // The temp file, in the same directory as the target so rename() stays in
    // one filesystem. Ending in "XXXXXX": a fresh name from mkostemp (O_EXCL,
    // so nothing planted there is ever opened); otherwise that fixed name,
    // truncated and opened O_NOFOLLOW (a crash then leaves one stale file, not
    // one per attempt). Empty: `path` + ".tmp".
    std::string temp;
    mode_t mode = 0600;  // of a fixed-name temp file (mkostemp always gives 0600)
    // Give the new file this file's permissions and owner (hosts.deny: tcpd
    // must still read it). An EPERM from fchown is tolerated (not root).
    const struct stat* keep_owner_of = nullptr;
    RenameFn rename;  // default rename(2); tests inject EBUSY
};

// Thrown when only the final rename failed (the temp file is removed). Callers
// with a fallback catch this one: a file bind-mounted into a container gives
// EBUSY and can only be rewritten in place.
class RenameError : public std::system_error {
public:
    using std::system_error::system_error;
};

// Writes `parts`, one after the other, to a temp file, fsyncs it, renames it
// over `path` and fsyncs the directory, so that after a crash the file is the
// old one or the new one, never a torn mix. Throws std::system_error (or
// RenameError) naming the step and the file; the temp file is removed on
// failure.
void write_file_atomically(const std::string& path, std::span<const std::string> parts,
                           const AtomicWriteOptions& opts = {});
inline void write_file_atomically(const std::string& path, const std::string& content,
                                  const AtomicWriteOptions& opts = {}) {
    write_file_atomically(path, std::span<const std::string>(&content, 1), opts);
}

}  // namespace portsentry::base
