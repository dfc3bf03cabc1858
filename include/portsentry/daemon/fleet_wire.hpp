// What goes over the wire to CrowdSec's LAPI and into <state>.push: the
// alert body (docs/CROWDSEC facts: every required field, stop_at = now so the
// ban lasts its duration), the decisions stream's entries, Go durations.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portsentry/daemon/fleet_client.hpp"

namespace portsentry::daemon {

// "4h", "3h59m58.5s", "-1.5s", "500ms": whole seconds, rounded toward zero;
// nullopt when it is not a Go duration.
std::optional<int64_t> parse_go_duration(std::string_view s);
// Whole seconds as a Go duration: "90s".
std::string go_duration(int64_t seconds);

namespace fleet_wire {

// One alert with one ban decision (scope Ip, or Range for a prefix), for
// the ban's time left at `now`.
nlohmann::json alert_json(const FleetAlert& a, int64_t now);
// The whole answer of GET /v1/decisions/stream ({"new": [...], "deleted":
// [...]}, either list null when empty) into decisions, without a DOM; false
// when it is not such a JSON object.
bool parse_stream(std::string_view body, std::vector<FleetDecision>& added, std::vector<FleetDecision>& deleted);
// The prefix a decision names: scope Ip (or ip) a host, Range (or range) a
// CIDR; nullopt for another scope or a value that does not parse.
std::optional<net::Cidr> prefix_of(const FleetDecision& d);
// The LAPI's alert filter for `c`: "ip=ADDR" for a host, "range=CIDR" else.
std::string alerts_filter(const net::Cidr& c);
// A queued alert as one line of <state>.push (no newline), and back.
std::string queue_line(const FleetAlert& a);
std::optional<FleetAlert> queue_entry(const std::string& line);

}  // namespace fleet_wire
}  // namespace portsentry::daemon
