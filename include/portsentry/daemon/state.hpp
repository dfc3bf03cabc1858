// The daemon's own ban table, persisted at Config::state_file.
// `list`, `why` and `status` read this, never the kernel set: listing a
// 1M-element nft set takes ~47 s (measured on these machines).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "portsentry/base/unique_fd.hpp"
#include "portsentry/daemon/state_format.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::daemon {

struct CidrLess {
    bool operator()(const net::Cidr& a, const net::Cidr& b) const {
        if (a.addr != b.addr) return a.addr < b.addr;
        return a.prefix < b.prefix;
    }
};

// What load() found on disk besides the records: the snapshot's generation
// and the journals next to it (StateFiles opens them from here).
struct StateOnDisk {
    uint64_t generation = 0;    // the snapshot's ("# generation N"); 0: none, or an older version's file
    uint64_t snapshot_bytes = 0;
    struct Journal {
        uint64_t generation = 0;
        uint64_t bytes = 0;       // file size
        uint64_t committed = 0;   // bytes up to and including its last commit line
    };
    std::vector<Journal> journals;  // every <state>.journal.<N> found, by generation
    uint64_t replayed_bytes() const;  // of the journals load() replayed (generation >= the snapshot's)
};

class BanStore {
public:
    explicit BanStore(std::string path) : path_(std::move(path)) {}

    // Reads the state file, then replays its journals (docs/ARCHITECTURE.md,
    // "Files the daemon owns"); a missing file is an empty store. Malformed
    // lines are skipped and described in `warnings` (a hand-edited file must
    // not stop the daemon from starting); a journal's lines after its last
    // commit (a crash mid-batch, a torn last line) are dropped. `progress`, if
    // given, is called every kLoadSlice lines (start-up checks for SIGTERM
    // there; it may throw).
    void load(std::vector<std::string>* warnings = nullptr, const std::function<void()>& progress = {});
    static constexpr size_t kLoadSlice = 65536;
    const StateOnDisk& on_disk() const { return disk_; }
    // A whole snapshot, synchronously (offline commands, tools): temp file +
    // fsync + rename, with a generation above every journal load() saw, whose
    // files are then removed. Never a half-written state file.
    void save() const;
    // The file's content (without a generation line): what save() writes.
    std::string serialize() const;
    // The same in slices, so the packet loop never spends long on a big
    // table: start `out` with header(), then call until it returns true.
    // Each call appends up to `max_records` records from `cursor` on (a key,
    // so changes to the table between calls are safe) and moves the cursor.
    // A record added or changed behind the cursor waits for the next pass.
    static std::string_view header();
    // header() and the generation line: the first part of a snapshot.
    static std::string snapshot_header(uint64_t generation);
    static std::string journal_path(const std::string& state, uint64_t generation);
    bool serialize_some(std::string& out, std::optional<net::Cidr>& cursor, size_t max_records) const;

    // Every change is made through these (never through a reference into the
    // table), so the expiry index and the change list stay exact.
    void put(BanRecord r);
    // One more ban of `prefix` at `now` lasting `duration` seconds (0 =
    // permanent): first_seen kept, count incremented, origin/expiry updated;
    // the probe that caused it, if given.
    struct Probe {
        uint16_t port = 0;
        std::string proto, type;
    };
    const BanRecord& record_ban(const net::Cidr& prefix, const std::string& origin, int64_t now, int64_t duration,
                                const Probe* probe = nullptr);
    const BanRecord* find(const net::Cidr& prefix) const;
    // Most specific active record covering `a`.
    const BanRecord* covering(const net::IpAddr& a, int64_t now) const;
    bool erase(const net::Cidr& prefix);
    // Records inside `c` (c's own and every narrower one), active ones only
    // or history too.
    std::vector<net::Cidr> within(const net::Cidr& c, int64_t now, bool active_only) const;
    // Active bans whose prefix starts at `a` (what a kernel interval element names).
    std::vector<net::Cidr> starting_at(const net::IpAddr& a, int64_t now) const;
    // `unban CIDR`: erases `c`'s own record and every record inside it
    // (history too: an unban forgives). Returns the bans that were active.
    std::vector<net::Cidr> erase_within(const net::Cidr& c, int64_t now);
    // Ends an active ban now (eviction, aggregation), keeping it as history.
    void end_ban(const net::Cidr& prefix, int64_t now, const std::string& why);
    // Forgets ended bans: those that ended `keep_for` seconds ago or more,
    // then the longest-ended ones beyond `max_ended`. Returns how many went.
    // O(what goes) through the expiry index: it runs every tick.
    size_t forget(int64_t now, int64_t keep_for, size_t max_ended);

    // Active bans in the family of `family` (AF_INET / AF_INET6): O(1)
    // amortized (`status` and the metrics ask every second at a million).
    size_t active_count(uint8_t family, int64_t now) const;
    // The ban to evict from a full set of `family`: the oldest (earliest
    // last ban) detector ban, else the oldest of any origin; `spare` is never
    // chosen (the bans being added). nullptr: none active.
    const BanRecord* oldest_active(uint8_t family, int64_t now, const std::vector<net::Cidr>& spare = {}) const;
    // The first `count` active bans of `family` in that same eviction order.
    std::vector<const BanRecord*> eviction_order(uint8_t family, int64_t now, size_t count,
                                                 const std::vector<net::Cidr>& spare = {}) const;
    // Active single-host bans inside `prefix`.
    std::vector<net::Cidr> hosts_within(const net::Cidr& prefix, int64_t now) const;

    const std::map<net::Cidr, BanRecord, CidrLess>& records() const { return records_; }
    const std::string& path() const { return path_; }

    // The journal's feed (StateSaver): once on, every prefix whose record
    // changed (or went) is listed until taken; the same prefix may repeat.
    void track_changes(bool on);
    bool has_changes() const { return !changes_.empty(); }
    std::vector<net::Cidr> take_changes();

private:
    using Table = std::map<net::Cidr, BanRecord, CidrLess>;
    // Timed records (expires != 0) of one family by (expires, prefix): what
    // has ended by `now` is a prefix of it.
    struct ExpiryLess {
        bool operator()(const std::pair<int64_t, const net::Cidr*>& a,
                        const std::pair<int64_t, const net::Cidr*>& b) const;
    };
    using Expiry = std::set<std::pair<int64_t, const net::Cidr*>, ExpiryLess>;
    struct Family {
        Expiry timed;
        size_t permanent = 0;
        size_t ended = 0;  // entries of `timed` with expires <= swept_
    };
    Family& family_of(uint8_t family) const { return families_[family == AF_INET6]; }
    void index_add(const Table::value_type& kv);
    void index_remove(const Table::value_type& kv);
    void sweep(int64_t now) const;  // moves swept_ to now, adjusting `ended`
    Table::iterator erase_at(Table::iterator it);
    void changed(const net::Cidr& c) {
        if (tracking_) changes_.push_back(c);
    }
    void load_snapshot(std::vector<std::string>* warnings, const std::function<void()>& progress);
    void replay_journal(StateOnDisk::Journal& j, std::vector<std::string>* warnings);
    void apply_journal_line(const std::string& path, unsigned lineno, const std::string& line,
                            std::vector<std::string>* warnings);
    void clear();

    std::string path_;
    Table records_;
    mutable std::array<Family, 2> families_;
    mutable int64_t swept_ = 0;
    StateOnDisk disk_;
    bool tracking_ = false;
    std::vector<net::Cidr> changes_;
};

// An flock()ed lock file: one daemon per state (docs/ARCHITECTURE.md, "Files"), and offline
// commands edit the state only while no daemon holds it.
class LockFile {
public:
    LockFile() = default;
    // Returns an unlocked object if another process holds it (when !wait).
    static LockFile acquire(const std::string& path, bool wait);
    bool locked() const { return fd_.valid(); }

private:
    base::UniqueFd fd_;  // closing it drops the lock
};

}  // namespace portsentry::daemon
