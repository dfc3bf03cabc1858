// hosts.deny (KILL_HOSTS_DENY) without a whole-file rewrite per ban.
//
// A new ban appends its one line in place (O_APPEND, under an exclusive flock
// on the file: tcpd and sshd read a line whole, and fail2ban's hostsdeny
// action or an admin's editor locking it are waited for briefly). A set of the
// lines in the file, read once and again only when someone else changed the
// file (inode, size or mtime differ from what our last write left), keeps an
// identical line from ever being written twice. Lines of bans that ended
// (expiry, unban, eviction) are removed in batches, at most one rewrite per
// `rewrite_interval`: temp file + fsync + rename, or — when the file cannot be
// replaced (a bind-mounted /etc/hosts.deny: EBUSY, EXDEV, EROFS) — truncated
// and rewritten in place under the lock. Only lines this object wrote or
// adopted for a ban are ever removed; an admin's own lines stay.
//
// Not thread-safe: one owner (the daemon's response worker). Pure of clocks:
// the caller passes `now` (steady), so the rewrite interval is testable.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "portsentry/base/files.hpp"
#include "portsentry/base/metric.hpp"
#include "portsentry/base/unique_fd.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::actions {

struct HostsDenyResult {
    enum class Status { added, already_present, failed } status = Status::failed;
    std::string error;  // when failed: what and why
};

struct HostsDenyOptions {
    std::chrono::seconds rewrite_interval{10};  // the issue: at most one rewrite per 10 s
    // Longest wait for another process's flock (an admin's editor, fail2ban).
    std::chrono::milliseconds lock_wait{1000};
    base::RenameFn rename;  // rename(2) by default; tests inject EBUSY
};

struct HostsDenyCounters {
    base::Counter rewrites;           // clean-up rewrites (replaced or in place)
    base::Counter rewrites_in_place;  // of which in place (the file could not be replaced)
    base::Counter lines_removed;      // lines of ended bans removed
    base::Counter rereads;            // the file changed under us and was read again
};

class HostsDenyFile {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    explicit HostsDenyFile(std::string path, HostsDenyOptions opts = {});

    // Adds `line` (no newline) for the ban of `ip` that ends at `until`
    // (nullopt: never). A line already in the file is not written again; if
    // this object wrote it for an earlier ban of `ip`, it is kept for the new
    // one. Refuses a symlink or non-regular file; creates the file (0644).
    HostsDenyResult add(const std::string& line, const net::IpAddr& ip, std::optional<TimePoint> until);
    // Reads the file's lines now (start-up) rather than at the first ban,
    // which would then wait for a big file. A missing file is not created.
    void preload();
    // Start-up after a restart: `line`, written for `ip`'s ban by the daemon
    // that ran before, is this object's again when it is in the file now —
    // it then goes when that ban ends (`until`, nullopt: never; or ended()).
    // A line not in the file is not added. An admin's identical line cannot
    // be told from ours: the caller only asks for lines of our template for
    // an address it holds a ban for. Returns whether the line was adopted.
    bool adopt(const std::string& line, const net::IpAddr& ip, std::optional<TimePoint> until);
    // `ip`'s ban ended early (unban, eviction): its lines go at the next rewrite.
    void ended(const net::IpAddr& ip);
    // Removes the lines of ended bans (ended() or `until` reached by `now`) in
    // one rewrite, unless the last one was less than rewrite_interval ago.
    // Returns "" or what failed (the lines are then tried again next time).
    std::string maintain(TimePoint now);
    // Lines waiting for removal at `now`.
    size_t removal_due(TimePoint now) const;

    // hosts_deny_file changed (SIGHUP): forget the old file's lines (they
    // stay there), keep the counters.
    void reset(std::string path);

    const std::string& path() const { return path_; }
    const HostsDenyCounters& counters() const { return counters_; }

private:
    struct Owned {
        net::IpAddr ip;
        std::optional<TimePoint> until;
        bool ended = false;
    };
    bool due(const Owned& o, TimePoint now) const;
    std::string open_locked(base::UniqueFd& fd, struct stat& st);
    std::string sync_from(int fd, const struct stat& st, std::string* content);
    std::string rewrite(const std::unordered_set<std::string>& gone);
    void remember(int fd);

    std::string path_;
    HostsDenyOptions opts_;
    std::unordered_set<std::string> present_;      // every line in the file
    bool known_valid_ = false;                     // present_ reflects `known_`
    struct stat known_ {};                         // the file as our last read/write left it
    std::unordered_map<std::string, Owned> owned_; // lines written (or adopted) for a ban
    std::optional<TimePoint> last_rewrite_;
    HostsDenyCounters counters_;
};

}  // namespace portsentry::actions
