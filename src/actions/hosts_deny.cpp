#include "portsentry/actions/hosts_deny.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "portsentry/base/error.hpp"

namespace portsentry::actions {

using base::UniqueFd;

namespace {

std::string sys_error(const std::string& what, int err) { return base::sys_error(what, err).what(); }

HostsDenyResult fail(std::string why) { return {HostsDenyResult::Status::failed, std::move(why)}; }

// Non-blocking attempts: flock() has no timeout, and a lock someone forgot
// must cost us one bounded wait, not the worker thread.
bool lock_within(int fd, std::chrono::milliseconds wait) {
    const auto end = std::chrono::steady_clock::now() + wait;
    for (;;) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
        if (errno != EWOULDBLOCK && errno != EINTR) return false;
        if (std::chrono::steady_clock::now() >= end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

// The whole file through `fd` (pread: the offset of an O_APPEND fd is irrelevant).
std::string read_all(int fd, std::string& content) {
    content.clear();
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t n = ::pread(fd, buf, sizeof buf, off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error("read", errno);
        }
        if (n == 0) return {};
        content.append(buf, static_cast<size_t>(n));
        off += n;
    }
}

// Each line of `content` without its newline (and without a CR: a file
// edited on another system still matches).
template <typename F>
void for_each_line(std::string_view content, F&& f) {
    size_t pos = 0;
    while (pos < content.size()) {
        size_t nl = content.find('\n', pos);
        std::string_view l = content.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        f(l, nl == std::string_view::npos ? content.size() : nl + 1);
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
}

bool same_file_state(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

HostsDenyFile::HostsDenyFile(std::string path, HostsDenyOptions opts) : path_(std::move(path)), opts_(std::move(opts)) {}

// Opens the file for reading and appending, refusing anything but a regular
// file (O_NOFOLLOW: a planted symlink must not make us write to /etc/shadow;
// O_NONBLOCK: a FIFO must not hang us in open()), and locks it.
std::string HostsDenyFile::open_locked(UniqueFd& fd, struct stat& st) {
    fd.reset(::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644));
    if (!fd) {
        const int err = errno;
        if (err == ELOOP) return path_ + " is a symlink, refusing to write to it";
        return sys_error("open " + path_, err);
    }
    if (::fstat(fd.get(), &st) != 0) return sys_error("fstat " + path_, errno);
    if (!S_ISREG(st.st_mode)) return path_ + " is not a regular file";
    if (!lock_within(fd.get(), opts_.lock_wait)) return "flock " + path_ + ": held by another process";
    return {};
}

// Reads the file again when it is not as our last read or write left it
// (another writer, an admin's edit, a first use). `content` (optional) gets it.
std::string HostsDenyFile::sync_from(int fd, const struct stat& st, std::string* content) {
    const bool changed = !known_valid_ || !same_file_state(st, known_);
    if (!changed && !content) return {};
    std::string text;
    if (auto err = read_all(fd, text); !err.empty()) return err + " " + path_;
    present_.clear();
    for_each_line(text, [&](std::string_view l, size_t) {
        if (!l.empty()) present_.emplace(l);
    });
    if (known_valid_ && changed) counters_.rereads.inc();
    known_ = st;
    known_valid_ = true;
    if (content) *content = std::move(text);
    return {};
}

void HostsDenyFile::remember(int fd) {
    known_valid_ = ::fstat(fd, &known_) == 0;
}

HostsDenyResult HostsDenyFile::add(const std::string& line, const net::IpAddr& ip, std::optional<TimePoint> until) {
    if (line.empty() || line.find('\n') != std::string::npos || line.find('\0') != std::string::npos ||
        line.find('\r') != std::string::npos)
        return fail("line is empty or contains a newline or NUL");
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
        return fail(path_ + " is a symlink, refusing to write to it");
    UniqueFd fd;
    if (auto err = open_locked(fd, st); !err.empty()) return fail(err);
    if (auto err = sync_from(fd.get(), st, nullptr); !err.empty()) return fail(err);

    auto own = [&] {
        auto [it, fresh] = owned_.try_emplace(line, Owned{ip, until, false});
        if (!fresh && it->second.ip == ip) it->second = Owned{ip, until, false};  // a new ban keeps it
    };
    if (present_.contains(line)) {
        // Ours from an earlier ban of this host (maybe waiting for removal):
        // the new ban keeps it. Someone else's line stays theirs.
        if (auto it = owned_.find(line); it != owned_.end()) own();
        return {HostsDenyResult::Status::already_present, {}};
    }
    std::string addition;
    if (st.st_size > 0) {  // a last line without its newline must not be extended
        char last = '\n';
        if (::pread(fd.get(), &last, 1, st.st_size - 1) == 1 && last != '\n') addition.push_back('\n');
    }
    addition += line;
    addition.push_back('\n');
    // One write() on an O_APPEND fd: readers see the whole line or none of
    // it. No fsync: the line matters to tcpd now (page cache), and after a
    // crash the ban table restores the nft ban that does the real blocking.
    if (int err = base::write_all(fd.get(), addition); err != 0) return fail(sys_error("append " + path_, err));
    present_.insert(line);
    own();
    remember(fd.get());
    return {HostsDenyResult::Status::added, {}};
}

void HostsDenyFile::preload() {
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // add() reports why
    (void)sync_from(fd.get(), st, nullptr);
}

bool HostsDenyFile::adopt(const std::string& line, const net::IpAddr& ip, std::optional<TimePoint> until) {
    if (line.empty()) return false;
    if (!known_valid_) preload();
    if (!present_.contains(line)) return false;
    auto [it, fresh] = owned_.try_emplace(line, Owned{ip, until, false});
    if (!fresh && it->second.ip == ip) it->second = Owned{ip, until, false};
    return fresh || it->second.ip == ip;
}

void HostsDenyFile::reset(std::string path) {
    path_ = std::move(path);
    present_.clear();
    owned_.clear();
    known_valid_ = false;
    last_rewrite_.reset();
}

void HostsDenyFile::ended(const net::IpAddr& ip) {
    for (auto& [line, o] : owned_)
        if (o.ip == ip) o.ended = true;
}

bool HostsDenyFile::due(const Owned& o, TimePoint now) const { return o.ended || (o.until && *o.until <= now); }

size_t HostsDenyFile::removal_due(TimePoint now) const {
    size_t n = 0;
    for (const auto& [line, o] : owned_) n += due(o, now) ? 1 : 0;
    return n;
}

std::string HostsDenyFile::maintain(TimePoint now) {
    if (last_rewrite_ && now - *last_rewrite_ < opts_.rewrite_interval) return {};
    std::unordered_set<std::string> gone;
    for (const auto& [line, o] : owned_)
        if (due(o, now)) gone.insert(line);
    if (gone.empty()) return {};
    last_rewrite_ = now;  // a failure is retried after the interval too, not every turn
    auto err = rewrite(gone);
    if (err.empty())
        for (const auto& l : gone) owned_.erase(l);
    return err;
}

// One rewrite without the lines in `gone`, under the lock.
std::string HostsDenyFile::rewrite(const std::unordered_set<std::string>& gone) {
    UniqueFd fd;
    struct stat st {};
    if (auto err = open_locked(fd, st); !err.empty()) return err;
    std::string content;
    if (auto err = sync_from(fd.get(), st, &content); !err.empty()) return err;
    std::string kept;
    kept.reserve(content.size());
    size_t removed = 0;
    size_t start = 0;
    for_each_line(content, [&](std::string_view l, size_t end) {
        if (gone.contains(std::string(l))) {
            ++removed;
        } else {
            kept.append(content, start, end - start);
            if (end == content.size() && !kept.empty() && kept.back() != '\n') kept.push_back('\n');
        }
        start = end;
    });
    if (removed > 0) {
        base::AtomicWriteOptions w;
        w.temp = base::dir_of(path_) + "/.hosts.deny.portsentry.XXXXXX";
        w.keep_owner_of = &st;
        w.rename = opts_.rename;
        bool in_place = false;
        try {
            base::write_file_atomically(path_, kept, w);
        } catch (const std::system_error& e) {
            // A bind-mounted file (containers, test namespaces) cannot be
            // replaced: rename gives EBUSY (EXDEV for odd mounts; a read-only
            // directory over a writable bind-mounted file refuses the temp file
            // with EROFS). Rewrite it in place under the lock we hold instead.
            const int code = e.code().value();
            if (code != EBUSY && code != EXDEV && code != EROFS) return e.what();
            in_place = true;
        }
        if (in_place) {
            if (::ftruncate(fd.get(), 0) != 0) return sys_error("truncate " + path_, errno);
            if (int err = base::write_all(fd.get(), kept); err != 0) return sys_error("rewrite " + path_, err);
            (void)::fsync(fd.get());
            remember(fd.get());
            counters_.rewrites_in_place.inc();
        } else {
            known_valid_ = ::stat(path_.c_str(), &known_) == 0;
        }
        counters_.rewrites.inc();
        counters_.lines_removed.inc(removed);
    }
    for (const auto& l : gone) present_.erase(l);
    return {};
}

}  // namespace portsentry::actions
