#include "portsentry/daemon/state.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"

namespace portsentry::daemon {

using base::sys_error;

namespace {

constexpr std::string_view kGenerationLine = "# generation ";

// "<state>.journal.<N>" next to `state`: N, or nullopt for any other name.
std::optional<uint64_t> journal_generation(const std::string& state_name, const std::string& name) {
    const std::string stem = state_name + ".journal.";
    if (name.size() <= stem.size() || name.compare(0, stem.size(), stem) != 0) return std::nullopt;
    uint64_t g = 0;
    const char* b = name.data() + stem.size();
    const char* e = name.data() + name.size();
    auto [ptr, ec] = std::from_chars(b, e, g);
    if (ec != std::errc() || ptr != e) return std::nullopt;
    return g;
}

std::vector<StateOnDisk::Journal> find_journals(const std::string& state) {
    namespace fs = std::filesystem;
    std::vector<StateOnDisk::Journal> out;
    const fs::path p(state);
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(base::dir_of(state), ec)) {
        auto g = journal_generation(p.filename().string(), e.path().filename().string());
        if (g && e.is_regular_file(ec)) out.push_back({*g, static_cast<uint64_t>(e.file_size(ec)), 0});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.generation < b.generation; });
    return out;
}

}  // namespace

uint64_t StateOnDisk::replayed_bytes() const {
    uint64_t n = 0;
    for (const auto& j : journals)
        if (j.generation >= generation) n += j.bytes;
    return n;
}

bool BanStore::ExpiryLess::operator()(const std::pair<int64_t, const net::Cidr*>& a,
                                     const std::pair<int64_t, const net::Cidr*>& b) const {
    if (a.first != b.first) return a.first < b.first;
    if (!a.second || !b.second) return !a.second && b.second;  // null: before every prefix of that second
    return CidrLess{}(*a.second, *b.second);
}

void BanStore::index_add(const Table::value_type& kv) {
    Family& f = family_of(kv.first.addr.family);
    if (kv.second.expires == 0) {
        ++f.permanent;
        return;
    }
    f.timed.emplace(kv.second.expires, &kv.first);
    if (kv.second.expires <= swept_) ++f.ended;
}

void BanStore::index_remove(const Table::value_type& kv) {
    Family& f = family_of(kv.first.addr.family);
    if (kv.second.expires == 0) {
        --f.permanent;
        return;
    }
    f.timed.erase({kv.second.expires, &kv.first});
    if (kv.second.expires <= swept_) --f.ended;
}

// Each timed record is passed over once as the clock moves on (and once
// back, should the wall clock be set back): O(1) amortized per query.
void BanStore::sweep(int64_t now) const {
    if (now == swept_) return;
    for (Family& f : families_) {
        const int64_t lo = std::min(now, swept_), hi = std::max(now, swept_);
        // Entries with lo < expires <= hi change side.
        auto it = f.timed.lower_bound(std::pair<int64_t, const net::Cidr*>{lo + 1, nullptr});
        size_t n = 0;
        for (; it != f.timed.end() && it->first <= hi; ++it) ++n;
        f.ended = now > swept_ ? f.ended + n : f.ended - n;
    }
    swept_ = now;
}

BanStore::Table::iterator BanStore::erase_at(Table::iterator it) {
    index_remove(*it);
    changed(it->first);
    return records_.erase(it);
}

void BanStore::clear() {
    records_.clear();
    for (Family& f : families_) f = Family{};
    changes_.clear();
}

void BanStore::track_changes(bool on) {
    tracking_ = on;
    if (!on) changes_.clear();
}

std::vector<net::Cidr> BanStore::take_changes() { return std::exchange(changes_, {}); }

void BanStore::load(std::vector<std::string>* warnings, const std::function<void()>& progress) {
    clear();
    disk_ = StateOnDisk{};
    load_snapshot(warnings, progress);
    disk_.journals = find_journals(path_);
    for (auto& j : disk_.journals) {
        if (j.generation < disk_.generation) continue;  // stale: already in the snapshot
        replay_journal(j, warnings);
        if (progress) progress();
    }
    changes_.clear();  // what was read is on disk already
}

void BanStore::load_snapshot(std::vector<std::string>* warnings, const std::function<void()>& progress) {
    std::ifstream in(path_);
    if (!in) {
        if (errno == ENOENT) return;
        throw sys_error("cannot read state file " + path_);
    }
    std::string line;
    unsigned lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        disk_.snapshot_bytes += line.size() + 1;
        if (progress && lineno % kLoadSlice == 0) progress();
        if (line.empty()) continue;
        if (line[0] == '#') {
            if (line.starts_with(kGenerationLine))
                std::from_chars(line.data() + kGenerationLine.size(), line.data() + line.size(), disk_.generation);
            continue;
        }
        try {
            BanRecord r = read_record_line(line);
            // The file is written in key order: the hint makes each insert
            // O(1) instead of O(log n). A repeated prefix: the last line wins.
            auto before = records_.size();
            auto it = records_.try_emplace(records_.end(), r.prefix);
            if (records_.size() == before) index_remove(*it);
            it->second = std::move(r);
            index_add(*it);
        } catch (const std::exception& e) {
            if (warnings)
                warnings->push_back(path_ + ":" + std::to_string(lineno) + ": skipped malformed ban record (" +
                                    e.what() + ")");
        }
    }
}

// A batch is applied at its commit line; what follows the last commit (a
// crash while appending, a torn last line) is dropped, so the table read is
// one the daemon really had.
void BanStore::replay_journal(StateOnDisk::Journal& j, std::vector<std::string>* warnings) {
    const std::string path = journal_path(path_, j.generation);
    std::ifstream in(path);
    if (!in) return;  // gone meanwhile: nothing to replay
    std::vector<std::pair<unsigned, std::string>> batch;
    std::string line;
    unsigned lineno = 0;
    uint64_t offset = 0;
    while (std::getline(in, line)) {
        ++lineno;
        const bool torn = in.eof();  // no newline: the write was cut short
        offset += line.size() + (torn ? 0 : 1);
        if (torn) continue;
        if (line.empty() || line[0] == '#') {
            if (batch.empty()) j.committed = offset;  // the header: appending after it is safe
            continue;
        }
        if (line == ".") {
            for (auto& [n, l] : batch) apply_journal_line(path, n, l, warnings);
            batch.clear();
            j.committed = offset;
            continue;
        }
        batch.emplace_back(lineno, std::move(line));
    }
    if (!batch.empty() && warnings)
        warnings->push_back(fmt::format("{}: {} change{} after the last commit dropped (written when the daemon stopped)",
                                        path, batch.size(), batch.size() == 1 ? "" : "s"));
}

void BanStore::apply_journal_line(const std::string& path, unsigned lineno, const std::string& line,
                                  std::vector<std::string>* warnings) {
    try {
        const std::string_view body = std::string_view(line).substr(1);
        if (line[0] == kJournalPut) {
            put(read_record_line(body));
        } else if (line[0] == kJournalErase) {
            auto c = net::Cidr::parse(body);
            if (!c) throw std::runtime_error("bad prefix");
            erase(*c);
        } else {
            throw std::runtime_error("unknown operation");
        }
    } catch (const std::exception& e) {
        if (warnings)
            warnings->push_back(path + ":" + std::to_string(lineno) + ": skipped malformed journal line (" + e.what() +
                                ")");
    }
}

std::string_view BanStore::header() {
    return "# portsentry-nfq ban table: one JSON object per line; edit only with the daemon stopped\n";
}

std::string BanStore::snapshot_header(uint64_t generation) {
    return std::string(header()) + std::string(kGenerationLine) + std::to_string(generation) + "\n";
}

std::string BanStore::journal_path(const std::string& state, uint64_t generation) {
    return state + ".journal." + std::to_string(generation);
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
    for (size_t n = 0; it != records_.end() && n < max_records; ++it, ++n) append_record_line(out, it->second);
    if (it == records_.end()) {
        cursor.reset();
        return true;
    }
    cursor = it->first;
    return false;
}

void BanStore::save() const {
    uint64_t g = disk_.generation + 1;
    for (const auto& j : disk_.journals) g = std::max(g, j.generation + 1);
    std::string parts[] = {snapshot_header(g), {}};
    parts[1].reserve(records_.size() * 200);
    std::optional<net::Cidr> cursor;
    serialize_some(parts[1], cursor, records_.size());
    base::write_file_atomically(path_, parts);
    // Every journal is older than this snapshot now: stale, however this ends.
    for (const auto& j : find_journals(path_)) ::unlink(journal_path(path_, j.generation).c_str());
}

void BanStore::put(BanRecord r) {
    auto [it, fresh] = records_.try_emplace(r.prefix);
    if (!fresh) index_remove(*it);
    it->second = std::move(r);
    index_add(*it);
    changed(it->first);
}

const BanRecord& BanStore::record_ban(const net::Cidr& prefix, const std::string& origin, int64_t now,
                                      int64_t duration, const Probe* probe) {
    auto [it, fresh] = records_.try_emplace(prefix);
    if (!fresh) index_remove(*it);
    BanRecord& r = it->second;
    r.prefix = prefix;
    if (r.first_seen == 0) r.first_seen = now;
    r.last_seen = now;
    r.origin = origin;
    r.count += 1;
    r.expires = duration > 0 ? now + duration : 0;
    r.ended.clear();
    if (probe) {
        r.last_port = probe->port;
        r.last_proto = probe->proto;
        r.last_type = probe->type;
    }
    index_add(*it);
    changed(prefix);
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

bool BanStore::erase(const net::Cidr& prefix) {
    auto it = records_.find(prefix);
    if (it == records_.end()) return false;
    erase_at(it);
    return true;
}

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
        it = erase_at(it);
    }
    return active;
}

void BanStore::end_ban(const net::Cidr& prefix, int64_t now, const std::string& why) {
    auto it = records_.find(prefix);
    if (it == records_.end() || !it->second.active(now)) return;
    index_remove(*it);
    // One second back: `expires > now` is what active() tests.
    it->second.expires = now > 1 ? now - 1 : 1;
    it->second.ended = why;
    index_add(*it);
    changed(prefix);
}

size_t BanStore::forget(int64_t now, int64_t keep_for, size_t max_ended) {
    sweep(now);
    size_t gone = 0;
    // The index's front, across both families: the record that ended first.
    auto first_ended = [&]() -> std::pair<int64_t, const net::Cidr*> {
        std::pair<int64_t, const net::Cidr*> best{std::numeric_limits<int64_t>::max(), nullptr};
        for (const Family& f : families_)
            if (!f.timed.empty() && f.timed.begin()->first <= now && f.timed.begin()->first < best.first)
                best = *f.timed.begin();
        return best;
    };
    for (;;) {
        const auto [expires, prefix] = first_ended();
        if (!prefix) break;
        const size_t ended = families_[0].ended + families_[1].ended;
        // Remembered for keep_for; bounded history: the longest ended go first.
        if (expires + keep_for > now && ended <= max_ended) break;
        erase_at(records_.find(*prefix));
        ++gone;
    }
    return gone;
}

size_t BanStore::active_count(uint8_t family, int64_t now) const {
    sweep(now);
    const Family& f = family_of(family);
    return f.permanent + f.timed.size() - f.ended;
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
