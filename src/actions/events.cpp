#include "portsentry/actions/events.hpp"

#include <utility>

namespace portsentry::actions {

namespace {

std::string iso8601(std::time_t t) {
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

EventLog::EventLog(std::string path, std::function<void(const std::string&)> on_error, double burst,
                   double per_second)
    : file_(std::move(path)), on_error_(std::move(on_error)), bucket_(burst, per_second) {}

void EventLog::write(const std::string& event, nlohmann::ordered_json fields) {
    write(event, std::move(fields), std::time(nullptr), Clock::now());
}

void EventLog::write(const std::string& event, nlohmann::ordered_json fields, std::time_t wall, TimePoint now) {
    // A spoofed flood makes thousands of events a second: cap them like the
    // syslog lines, and say how many were dropped once the flood eases.
    if (!bucket_.take(now)) {
        ++pending_suppressed_;
        ++counters_.suppressed;
        return;
    }
    if (pending_suppressed_ > 0) append_suppressed(wall);
    nlohmann::ordered_json j = {{"time", iso8601(wall)}, {"event", event}};
    for (auto& [k, v] : fields.items()) j[k] = std::move(v);
    append(j);
}

void EventLog::append(const nlohmann::ordered_json& j) {
    // Source addresses and hostnames are attacker-chosen: dump() escapes
    // them, and replaces invalid UTF-8 instead of throwing.
    std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    line += '\n';
    std::string err = file_.append(line);
    if (err.empty()) {
        ++counters_.written;
        last_error_.clear();
        return;
    }
    ++counters_.errors;
    if (err != last_error_ && on_error_) on_error_(file_.path() + ": " + err);
    last_error_ = err;
}

void EventLog::flush(std::time_t wall, TimePoint now) {
    if (pending_suppressed_ == 0 || !bucket_.take(now)) return;
    append_suppressed(wall);
}

void EventLog::append_suppressed(std::time_t wall) {
    append({{"time", iso8601(wall)}, {"event", "suppressed"}, {"count", pending_suppressed_}});
    pending_suppressed_ = 0;
}

std::string EventLog::reopen() { return file_.reopen(); }

}  // namespace portsentry::actions
