// One ban record and its line in the state file and the journal
// (docs/ARCHITECTURE.md, "Files the daemon owns"): the fast exact reader,
// the writer, and the journal's operations.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

    bool operator==(const BanRecord&) const = default;
};

// "2026-12-01 18:10:22 UTC" in local time; "never" for 0 (a permanent ban's expiry).
std::string format_epoch(int64_t t);

// load()'s fast path for one line: the record if the line is exactly in the
// form append_record_line() writes, else nullopt (read_record_line() then
// uses a full JSON parser, which also explains a malformed line).
std::optional<BanRecord> parse_record_line(std::string_view line);
// Either reader; throws (with the reason) on a malformed line.
BanRecord read_record_line(std::string_view line);
// The record as one JSON object and a newline.
void append_record_line(std::string& out, const BanRecord& r);

// Journal lines (state file + ".journal.<generation>"): each change of the
// table is the changed record's whole new state, so replaying a line twice,
// or an older line before a newer one, ends in the same table.
//   +{record as in the state file}   the record now reads so
//   -PREFIX                          the record is gone
//   .                                commit: the table as of here is a real
//                                    state; lines after the last one are
//                                    dropped at load (a crash mid-batch)
inline constexpr char kJournalPut = '+';
inline constexpr char kJournalErase = '-';
inline constexpr std::string_view kJournalCommit = ".\n";
void append_journal_erase(std::string& out, const net::Cidr& prefix);
inline void append_journal_put(std::string& out, const BanRecord& r) {
    out += kJournalPut;
    append_record_line(out, r);
}

}  // namespace portsentry::daemon
