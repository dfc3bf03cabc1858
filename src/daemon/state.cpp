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

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"

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

using base::sys_error;

namespace {

// The fast path of load(): a line exactly as serialize_some() writes it (a
// flat object, keys we know each at most once, plain ASCII strings without
// escapes, non-negative integers that fit their field) is read in one pass,
// ~20x faster than building an nlohmann DOM, which dominated start-up at a
// million records. Anything else (whitespace, escapes, unknown or repeated
// keys, other types, a prefix that does not parse) returns false and the line
// goes through nlohmann as before, with the same result and the same warning.
class FastLine {
public:
    explicit FastLine(std::string_view s) : s_(s) {}

    bool parse(BanRecord& r) {
        if (!eat('{')) return false;
        unsigned seen = 0;
        bool have_prefix = false;
        if (peek() == '}') return false;  // no prefix: nlohmann says why
        for (;;) {
            std::string_view key;
            if (!str(key) || !eat(':')) return false;
            const int k = key_index(key);
            if (k < 0 || (seen & (1u << k))) return false;
            seen |= 1u << k;
            switch (k) {
                case 0: {
                    std::string_view v;
                    if (!str(v)) return false;
                    auto c = net::Cidr::parse(v);
                    if (!c) return false;
                    r.prefix = *c;
                    have_prefix = true;
                    break;
                }
                case 1: if (!str_into(r.origin)) return false; break;
                case 2: if (!num(r.first_seen, INT64_MAX)) return false; break;
                case 3: if (!num(r.last_seen, INT64_MAX)) return false; break;
                case 4: if (!num(r.expires, INT64_MAX)) return false; break;
                case 5: {
                    int64_t v;
                    if (!num(v, UINT32_MAX)) return false;
                    r.count = static_cast<uint32_t>(v);
                    break;
                }
                case 6: {
                    int64_t v;
                    if (!num(v, UINT16_MAX)) return false;
                    r.last_port = static_cast<uint16_t>(v);
                    break;
                }
                case 7: if (!str_into(r.last_proto)) return false; break;
                case 8: if (!str_into(r.last_type)) return false; break;
                case 9: if (!str_into(r.ended)) return false; break;
                default: return false;
            }
            if (eat(',')) continue;
            if (!eat('}')) return false;
            return have_prefix && i_ == s_.size();
        }
    }

private:
    static int key_index(std::string_view k) {
        static constexpr std::string_view keys[] = {"prefix",  "origin",    "first_seen", "last_seen",  "expires",
                                                    "count",   "last_port", "last_proto", "last_type",  "ended"};
        for (int i = 0; i < 10; ++i)
            if (keys[i] == k) return i;
        return -1;
    }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool eat(char c) {
        if (peek() != c) return false;
        ++i_;
        return true;
    }
    bool str(std::string_view& out) {
        if (!eat('"')) return false;
        const size_t b = i_;
        for (; i_ < s_.size(); ++i_) {
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                out = s_.substr(b, i_ - b);
                ++i_;
                return true;
            }
            if (c < 0x20 || c >= 0x7f || c == '\\') return false;  // escapes, UTF-8: nlohmann's job
        }
        return false;
    }
    bool str_into(std::string& out) {
        std::string_view v;
        if (!str(v)) return false;
        out.assign(v);
        return true;
    }
    // JSON's integer grammar without a sign: no leading zero, at most `max`.
    bool num(int64_t& out, int64_t max) {
        const size_t b = i_;
        uint64_t v = 0;
        for (; i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; ++i_) {
            if (i_ - b >= 18) return false;  // long numbers: nlohmann decides
            v = v * 10 + static_cast<uint64_t>(s_[i_] - '0');
        }
        const size_t len = i_ - b;
        if (len == 0 || (len > 1 && s_[b] == '0')) return false;
        if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) return false;
        if (v > static_cast<uint64_t>(max)) return false;
        out = static_cast<int64_t>(v);
        return true;
    }

    std::string_view s_;
    size_t i_ = 0;
};

BanRecord parse_with_nlohmann(const std::string& line) {
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
    return r;
}

}  // namespace

std::optional<BanRecord> parse_record_line(const std::string& line) {
    BanRecord r;
    r.count = 1;  // nlohmann's default when the key is absent
    r.origin = "detector";
    if (FastLine(line).parse(r)) return r;
    return std::nullopt;
}

void BanStore::load(std::vector<std::string>* warnings, const std::function<void()>& progress) {
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
        if (progress && lineno % kLoadSlice == 0) progress();
        if (line.empty() || line[0] == '#') continue;
        try {
            std::optional<BanRecord> fast = parse_record_line(line);
            BanRecord r = fast ? std::move(*fast) : parse_with_nlohmann(line);
            // The file is written in key order: the hint makes each insert
            // O(1) instead of O(log n). A repeated prefix: the last line wins.
            auto it = records_.try_emplace(records_.end(), r.prefix);
            it->second = std::move(r);
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

void BanStore::save() const { base::write_file_atomically(path_, serialize()); }

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
            base::write_file_atomically(path_, snapshot);
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
    base::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    // The default lives in the unit's RuntimeDirectory=, which systemd
    // removes when the service stops: offline commands (and a daemon run by
    // hand) make it again, root-only like the socket in it.
    if (!fd && errno == ENOENT) {
        const auto slash = path.rfind('/');
        if (slash != std::string::npos && slash > 0 && ::mkdir(path.substr(0, slash).c_str(), 0700) == 0)
            fd = base::UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        else
            errno = ENOENT;
    }
    if (!fd) throw sys_error("cannot open lock file " + path);
    if (::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EWOULDBLOCK) return l;
        throw sys_error("cannot lock " + path);
    }
    l.fd_ = std::move(fd);
    return l;
}

}  // namespace portsentry::daemon
