// JSON event lines (json_log): one self-contained object per event, for
// SIEMs and scripts that would otherwise parse attackalert prose.
//
//   {"time":"2026-11-25T13:40:02Z","event":"scan","src":"198.51.100.2",
//    "proto":"TCP","port":7,"scan":"TCP SYN/Normal scan","block":1,
//    "banned":true,"ban_seconds":3600,"offences":1,"responded":true}
//
// Events (the daemon picks the fields; portsentry-nfq.yaml(5) lists them):
// scan (a detection that fired), already_blocked, rate_limited, protected,
// ban, unban, evicted, aggregated, suppressed (a summary after the flood cap
// dropped lines).
// Appended with O_APPEND|O_NOFOLLOW (one write() per line), reopened on SIGHUP.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "portsentry/actions/files.hpp"
#include "portsentry/actions/log.hpp"

namespace portsentry::actions {

struct EventLogCounters {
    uint64_t written = 0;
    uint64_t suppressed = 0;  // dropped by the flood cap (reported in "suppressed" events)
    uint64_t errors = 0;      // write failures
};

class EventLog {
public:
    // `on_error` hears each new failure reason once (the daemon logs it).
    EventLog(std::string path, std::function<void(const std::string&)> on_error = {},
             double burst = 1000, double per_second = 200);

    // Adds "time" and "event" in front of `fields` (an object) and appends the line.
    void write(const std::string& event, nlohmann::ordered_json fields, std::time_t wall, TimePoint now);
    void write(const std::string& event, nlohmann::ordered_json fields);
    // Each tick: reports a pending "suppressed" count once the cap allows.
    void flush(std::time_t wall, TimePoint now);
    std::string reopen();
    const std::string& path() const { return file_.path(); }
    const EventLogCounters& counters() const { return counters_; }

private:
    void append(const nlohmann::ordered_json& j);
    void append_suppressed(std::time_t wall);  // the count dropped so far, then reset

    AppendFile file_;
    std::function<void(const std::string&)> on_error_;
    TokenBucket bucket_;
    uint64_t pending_suppressed_ = 0;
    std::string last_error_;
    EventLogCounters counters_;
};

}  // namespace portsentry::actions
