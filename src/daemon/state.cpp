#include "portsentry/daemon/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

namespace portsentry::daemon {

std::string format_epoch(int64_t t) {
    if (t == 0) return "never";
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buf;
}


using nlohmann::json;

std::optional<int64_t> BanRecord::remaining(int64_t now) const {
    if (expires == 0) return std::nullopt;
    return expires > now ? expires - now : 0;
}

static std::system_error sys_error(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

void BanStore::load(std::vector<std::string>* warnings) {
    records_.clear();
    std::ifstream in(path_);
    if (!in) {
        if (errno == ENOENT) return;
        throw sys_error("cannot read state file " + path_);
    }
    std::string line;
    unsigned lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty() || line[0] == '#') continue;
        try {
            auto j = json::parse(line);
            auto prefix = net::Cidr::parse(j.at("prefix").get<std::string>());
            if (!prefix) throw std::runtime_error("bad prefix");
            BanRecord r;
            r.prefix = *prefix;
            r.origin = j.value("origin", "detector");
            r.first_seen = j.value("first_seen", int64_t{0});
            r.last_seen = j.value("last_seen", int64_t{0});
            r.expires = j.value("expires", int64_t{0});
            r.count = j.value("count", uint32_t{1});
            r.last_port = j.value("last_port", uint16_t{0});
            r.last_proto = j.value("last_proto", "");
            r.last_type = j.value("last_type", "");
            r.ended = j.value("ended", "");
            records_[r.prefix] = std::move(r);
        } catch (const std::exception& e) {
            if (warnings)
                warnings->push_back(path_ + ":" + std::to_string(lineno) + ": skipped malformed ban record (" +
                                    e.what() + ")");
        }
    }
}

namespace {

// A JSON string literal. The table's strings are ours (origins, scan names,
// prefixes) and plain ASCII: quote them directly, which keeps serializing a
// 100k-record table in tens of ms; anything else goes through nlohmann.
void append_json_string(std::string& out, std::string_view s) {
    bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    });
    if (!plain) {
        out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
        return;
    }
    out += '"';
    out += s;
    out += '"';
}

void append_field(std::string& out, std::string_view key, int64_t v) {
    out += key;
    const fmt::format_int digits(v);
    out.append(digits.data(), digits.size());
}

}  // namespace

std::string_view BanStore::header() {
    return "# portsentry-nfq ban table: one JSON object per line; edit only with the daemon stopped\n";
}

std::string BanStore::serialize() const {
    std::string out(header());
    out.reserve(out.size() + records_.size() * 200);
    std::optional<net::Cidr> cursor;
    serialize_some(out, cursor, records_.size());
    return out;
}

bool BanStore::serialize_some(std::string& out, std::optional<net::Cidr>& cursor, size_t max_records) const {
    auto it = cursor ? records_.lower_bound(*cursor) : records_.begin();
    for (size_t n = 0; it != records_.end() && n < max_records; ++it, ++n) {
        const BanRecord& r = it->second;
        out += "{\"prefix\":";
        append_json_string(out, r.prefix.to_string());
        out += ",\"origin\":";
        append_json_string(out, r.origin);
        append_field(out, ",\"first_seen\":", r.first_seen);
        append_field(out, ",\"last_seen\":", r.last_seen);
        append_field(out, ",\"expires\":", r.expires);
        append_field(out, ",\"count\":", r.count);
        append_field(out, ",\"last_port\":", r.last_port);
        out += ",\"last_proto\":";
        append_json_string(out, r.last_proto);
        out += ",\"last_type\":";
        append_json_string(out, r.last_type);
        if (!r.ended.empty()) {
            out += ",\"ended\":";
            append_json_string(out, r.ended);
        }
        out += "}\n";
    }
    if (it == records_.end()) {
        cursor.reset();
        return true;
    }
    cursor = it->first;
    return false;
}

void BanStore::save() const { write_file_atomically(path_, serialize()); }

void write_file_atomically(const std::string& path, const std::vector<std::string>& parts) {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) throw sys_error("cannot write " + tmp);
    for (const std::string& part : parts) {
        const char* p = part.data();
        size_t left = part.size();
        while (left > 0) {
            ssize_t n = ::write(fd, p, left);
            if (n < 0) {
                if (errno == EINTR) continue;
                auto err = sys_error("cannot write " + tmp);
                ::close(fd);
                throw err;
            }
            p += n;
            left -= static_cast<size_t>(n);
        }
    }
    // fsync before rename: after a crash the file is either old or new, never empty.
    if (::fsync(fd) < 0) {
        auto err = sys_error("cannot flush " + tmp);
        ::close(fd);
        throw err;
    }
    if (::close(fd) < 0) throw sys_error("cannot flush " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) < 0) throw sys_error("cannot rename " + tmp + " to " + path);
}

void write_file_atomically(const std::string& path, std::string content) {
    write_file_atomically(path, std::vector<std::string>{std::move(content)});
}

// ------------------------------------------------------------- StateWriter

StateWriter::StateWriter(std::string path) : path_(std::move(path)), thread_([this] { run(); }) {}

StateWriter::~StateWriter() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void StateWriter::submit(std::string snapshot) { submit(std::vector<std::string>{std::move(snapshot)}); }

void StateWriter::submit(std::vector<std::string> snapshot) {
    {
        std::lock_guard lk(mu_);
        if (pending_) ++counters_.replaced;
        pending_ = std::move(snapshot);
    }
    wake_.notify_one();
}

std::string StateWriter::flush() {
    std::unique_lock lk(mu_);
    idle_.wait(lk, [&] { return !pending_ && !writing_; });
    unreported_.clear();  // the caller reports it
    return error_;
}

std::string StateWriter::take_error() {
    std::lock_guard lk(mu_);
    return std::exchange(unreported_, std::string());
}

StateWriter::Counters StateWriter::counters() const {
    std::lock_guard lk(mu_);
    return counters_;
}

void StateWriter::run() {
    std::unique_lock lk(mu_);
    for (;;) {
        wake_.wait(lk, [&] { return pending_ || stop_; });
        if (!pending_) return;  // stop, and everything submitted is written
        std::vector<std::string> snapshot = std::move(*pending_);
        pending_.reset();
        writing_ = true;
        lk.unlock();
        std::string err;
        const auto t0 = std::chrono::steady_clock::now();
        try {
            write_file_atomically(path_, snapshot);
        } catch (const std::exception& e) {
            err = e.what();
        }
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        lk.lock();
        writing_ = false;
        error_ = err;
        if (err.empty()) {
            ++counters_.written;
            unreported_.clear();  // a newer snapshot made it: the old failure is moot
        } else {
            ++counters_.failed;
            unreported_ = err;
        }
        counters_.last_ms = ms;
        counters_.last_bytes = 0;
        for (const auto& part : snapshot) counters_.last_bytes += part.size();
        if (!pending_) idle_.notify_all();
    }
}

BanRecord& BanStore::upsert(const net::Cidr& prefix) {
    auto& r = records_[prefix];
    r.prefix = prefix;
    return r;
}

BanRecord& BanStore::record_ban(const net::Cidr& prefix, const std::string& origin, int64_t now, int64_t duration) {
    auto& r = upsert(prefix);
    if (r.first_seen == 0) r.first_seen = now;
    r.last_seen = now;
    r.origin = origin;
    r.count += 1;
    r.expires = duration > 0 ? now + duration : 0;
    r.ended.clear();
    return r;
}

const BanRecord* BanStore::find(const net::Cidr& prefix) const {
    auto it = records_.find(prefix);
    return it == records_.end() ? nullptr : &it->second;
}

const BanRecord* BanStore::covering(const net::IpAddr& a, int64_t now) const {
    const BanRecord* best = nullptr;
    // The store holds few prefixes per address (host + maybe its /64), so
    // checking the host entry and then each shorter prefix is cheap enough
    // for an operator command; the packet path never calls this.
    for (int len = static_cast<int>(a.bits()); len >= 0; --len) {
        net::Cidr c{a, static_cast<uint8_t>(len)};
        // clear host bits
        for (unsigned bit = static_cast<unsigned>(len); bit < a.bits(); ++bit)
            c.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
        auto it = records_.find(c);
        if (it != records_.end() && it->second.active(now)) {
            best = &it->second;
            break;
        }
    }
    return best;
}

bool BanStore::erase(const net::Cidr& prefix) { return records_.erase(prefix) > 0; }

std::vector<net::Cidr> BanStore::within(const net::Cidr& c, int64_t now, bool active_only) const {
    std::vector<net::Cidr> out;
    for (auto it = records_.lower_bound(net::Cidr{c.addr, 0}); it != records_.end() && c.contains(it->first.addr); ++it)
        if (it->first.prefix >= c.prefix && (!active_only || it->second.active(now))) out.push_back(it->first);
    return out;
}

std::vector<net::Cidr> BanStore::starting_at(const net::IpAddr& a, int64_t now) const {
    std::vector<net::Cidr> out;
    for (auto it = records_.lower_bound(net::Cidr{a, 0}); it != records_.end() && it->first.addr == a; ++it)
        if (it->second.active(now)) out.push_back(it->first);
    return out;
}

std::vector<net::Cidr> BanStore::erase_within(const net::Cidr& c, int64_t now) {
    std::vector<net::Cidr> active;
    for (auto it = records_.lower_bound(net::Cidr{c.addr, 0}); it != records_.end() && c.contains(it->first.addr);) {
        if (it->first.prefix < c.prefix) {  // a wider ban starting at the same address
            ++it;
            continue;
        }
        if (it->second.active(now)) active.push_back(it->first);
        it = records_.erase(it);
    }
    return active;
}

void BanStore::end_ban(const net::Cidr& prefix, int64_t now, const std::string& why) {
    auto it = records_.find(prefix);
    if (it == records_.end() || !it->second.active(now)) return;
    // One second back: `expires > now` is what active() tests.
    it->second.expires = now > 1 ? now - 1 : 1;
    it->second.ended = why;
}

size_t BanStore::forget(int64_t now, int64_t keep_for, size_t max_ended) {
    size_t gone = 0;
    std::vector<std::pair<int64_t, net::Cidr>> ended;
    for (auto it = records_.begin(); it != records_.end();) {
        const BanRecord& r = it->second;
        if (!r.active(now) && r.expires + keep_for <= now) {
            it = records_.erase(it);
            ++gone;
            continue;
        }
        if (!r.active(now)) ended.emplace_back(r.expires, r.prefix);
        ++it;
    }
    if (ended.size() > max_ended) {
        // Bounded history: forget the offences that ended longest ago first.
        const auto excess = static_cast<std::ptrdiff_t>(ended.size() - max_ended);
        std::nth_element(ended.begin(), ended.begin() + excess, ended.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto i = ended.begin(); i != ended.begin() + excess; ++i) gone += records_.erase(i->second);
    }
    return gone;
}

size_t BanStore::active_count(uint8_t family, int64_t now) const {
    size_t n = 0;
    for (const auto& [p, r] : records_) n += p.addr.family == family && r.active(now);
    return n;
}

std::vector<const BanRecord*> BanStore::eviction_order(uint8_t family, int64_t now, size_t count,
                                                       const std::vector<net::Cidr>& spare) const {
    std::vector<const BanRecord*> v;
    for (const auto& [p, r] : records_)
        if (p.addr.family == family && r.active(now) && std::find(spare.begin(), spare.end(), p) == spare.end())
            v.push_back(&r);
    // Detector bans before any other origin, oldest first; ties in table order.
    auto key = [](const BanRecord* r) { return std::make_pair(r->origin != "detector", r->last_seen); };
    count = std::min(count, v.size());
    std::partial_sort(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(count), v.end(),
                      [&](const BanRecord* a, const BanRecord* b) {
                          if (key(a) != key(b)) return key(a) < key(b);
                          return CidrLess{}(a->prefix, b->prefix);
                      });
    v.resize(count);
    return v;
}

const BanRecord* BanStore::oldest_active(uint8_t family, int64_t now, const std::vector<net::Cidr>& spare) const {
    auto v = eviction_order(family, now, 1, spare);
    return v.empty() ? nullptr : v.front();
}

std::vector<net::Cidr> BanStore::hosts_within(const net::Cidr& prefix, int64_t now) const {
    auto out = within(prefix, now, true);
    std::erase_if(out, [](const net::Cidr& c) { return c.prefix != c.addr.bits(); });
    return out;
}

LockFile LockFile::acquire(const std::string& path, bool wait) {
    LockFile l;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    // The default lives in the unit's RuntimeDirectory=, which systemd
    // removes when the service stops: offline commands (and a daemon run by
    // hand) make it again, root-only like the socket in it.
    if (fd < 0 && errno == ENOENT) {
        const auto slash = path.rfind('/');
        if (slash != std::string::npos && slash > 0 && ::mkdir(path.substr(0, slash).c_str(), 0700) == 0)
            fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        else
            errno = ENOENT;
    }
    if (fd < 0) throw sys_error("cannot open lock file " + path);
    if (::flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        int e = errno;
        ::close(fd);
        if (e == EWOULDBLOCK) return l;
        throw std::system_error(e, std::generic_category(), "cannot lock " + path);
    }
    l.fd_ = fd;
    return l;
}

LockFile& LockFile::operator=(LockFile&& o) noexcept {
    if (this != &o) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

LockFile::~LockFile() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace portsentry::daemon
