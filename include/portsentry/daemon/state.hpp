// The daemon's own ban table, persisted at Config::state_file.
// `list`, `why` and `status` read this, never the kernel set: listing a
// 1M-element nft set takes ~47 s (measured on these machines).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "portsentry/base/unique_fd.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::daemon {

struct BanRecord {
    net::Cidr prefix;
    std::string origin = "detector";  // detector, admin, fail2ban, fleet
    int64_t first_seen = 0;           // epoch seconds
    int64_t last_seen = 0;
    int64_t expires = 0;              // epoch seconds; 0 = permanent
    uint32_t count = 0;               // how many times banned
    uint16_t last_port = 0;
    std::string last_proto;           // "TCP" / "UDP"
    std::string last_type;            // scan name
    // Why an inactive record ended early: "" (expired, or still active),
    // "evicted" (the set was full), or the /64 that superseded it.
    std::string ended;

    // Inactive records are remembered (BanStore::forget) so that a repeat
    // offender's next ban escalates, across restarts.
    bool active(int64_t now) const { return expires == 0 || expires > now; }
    // Seconds left (nullopt = permanent); 0 once expired.
    std::optional<int64_t> remaining(int64_t now) const;
};

// "2026-12-01 18:10:22 UTC" in local time; "never" for 0 (a permanent ban's expiry).
std::string format_epoch(int64_t t);

// load()'s fast path for one line: the record if the line is exactly in the
// form serialize_some() writes (see state.cpp), else nullopt (load() then
// reads it with a full JSON parser, which also explains a malformed line).
std::optional<BanRecord> parse_record_line(const std::string& line);

struct CidrLess {
    bool operator()(const net::Cidr& a, const net::Cidr& b) const {
        if (a.addr != b.addr) return a.addr < b.addr;
        return a.prefix < b.prefix;
    }
};

class BanStore {
public:
    explicit BanStore(std::string path) : path_(std::move(path)) {}

    // Reads the file; a missing file is an empty store. Malformed lines are
    // skipped and described in `warnings` (a hand-edited file must not stop
    // the daemon from starting). `progress`, if given, is called every
    // kLoadSlice lines (start-up checks for SIGTERM there; it may throw).
    void load(std::vector<std::string>* warnings = nullptr, const std::function<void()>& progress = {});
    static constexpr size_t kLoadSlice = 65536;
    // temp file + fsync + rename: never a half-written state file.
    void save() const;
    // The file's content: what save() writes, and what a StateWriter is given.
    std::string serialize() const;
    // The same in slices, so the packet loop never spends long on a big
    // table: start `out` with header(), then call until it returns true.
    // Each call appends up to `max_records` records from `cursor` on (a key,
    // so changes to the table between calls are safe) and moves the cursor.
    // A record added or changed behind the cursor waits for the next pass.
    static std::string_view header();
    bool serialize_some(std::string& out, std::optional<net::Cidr>& cursor, size_t max_records) const;

    BanRecord& upsert(const net::Cidr& prefix);
    // One more ban of `prefix` at `now` lasting `duration` seconds (0 =
    // permanent): first_seen kept, count incremented, origin/expiry updated.
    BanRecord& record_ban(const net::Cidr& prefix, const std::string& origin, int64_t now, int64_t duration);
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
    size_t forget(int64_t now, int64_t keep_for, size_t max_ended);

    // Active bans in the family of `family` (AF_INET / AF_INET6).
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

private:
    std::string path_;
    std::map<net::Cidr, BanRecord, CidrLess> records_;
};

// Writes snapshots of the ban table off the packet loop. The loop only
// serializes; write + fsync + rename (tens of ms for a large table on a busy
// disk) happen on this thread, so a sustained attack cannot stall verdicts.
// Only the newest snapshot matters: one submitted while an older one still
// waits replaces it.
class StateWriter {
public:
    explicit StateWriter(std::string path);
    ~StateWriter();  // writes what still waits, then joins
    StateWriter(const StateWriter&) = delete;
    StateWriter& operator=(const StateWriter&) = delete;

    // A snapshot in parts (the slices it was serialized in), written in order.
    void submit(std::vector<std::string> snapshot);
    void submit(std::string snapshot);
    // Blocks until everything submitted is on disk (daemon exit).
    // Returns the failure of the last write, "" if it succeeded.
    std::string flush();
    // A failure not yet reported ("" if none): the loop logs it on its tick.
    std::string take_error();

    struct Counters {
        uint64_t written = 0;
        uint64_t replaced = 0;  // snapshots superseded before they were written
        uint64_t failed = 0;
        double last_ms = 0;     // duration of the last write
        size_t last_bytes = 0;
    };
    Counters counters() const;

private:
    void run();

    const std::string path_;
    mutable std::mutex mu_;
    std::condition_variable wake_;  // a snapshot waits, or stop
    std::condition_variable idle_;  // nothing waits and nothing is written
    std::optional<std::vector<std::string>> pending_;
    bool writing_ = false;
    bool stop_ = false;
    std::string error_;       // last write's failure, for flush()
    std::string unreported_;  // for take_error()
    Counters counters_;
    std::thread thread_;  // last: starts after the members it uses exist
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
