// The message catalogue: every line fail2ban, logcheck and admins' scripts
// parse, in one place, each pinned by a test (tests/unit/actions/test_messages.cpp).
// Wording is portsentry 1.2's wherever 1.2 had a line (portsentry.c,
// portsentry_io.c); new lines (nft set, rate limits, timeouts) follow its style.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "portsentry/net/packet.hpp"

namespace portsentry::actions::msg {


// --- detection (stealth and advanced modes) --------------------------------
// attackalert: <scan_name> from host: H/IP to TCP port: N
std::string tcp_scan(std::string_view scan_name, std::string_view host, std::string_view ip,
                     uint16_t port);
// attackalert: UDP scan from host: H/IP to UDP port: N
std::string udp_scan(std::string_view host, std::string_view ip, uint16_t port);
// attackalert: Packet from host: H/IP to TCP port: N has IP options set (detection avoidance technique).
std::string ip_options(std::string_view host, std::string_view ip, net::L4 proto, uint16_t port);
// attackalert: Host: H/IP is already blocked Ignoring
std::string already_blocked(std::string_view host, std::string_view ip);
// attackalert: ERROR: Could not block host H/IP !!
std::string could_not_block(std::string_view host, std::string_view ip);

// --- detection (classic -tcp / -udp tripwires) -----------------------------
// attackalert: Connect from host: H/IP to TCP port: N   (UDP port for -udp)
std::string connect(std::string_view host, std::string_view ip, net::L4 proto, uint16_t port);
// attackalert: Host: IP is already blocked. Ignoring
std::string classic_already_blocked(std::string_view ip);
// attackalert: ERROR: Could not block host IP !!
std::string classic_could_not_block(std::string_view ip);

// --- responses --------------------------------------------------------------
// attackalert: Ignoring TCP response per configuration file setting.
std::string ignoring_response(net::L4 proto);
// attackalert: Host IP has been blocked via nft set inet portsentry banned   (banned6 for IPv6)
std::string blocked_nft(std::string_view ip, bool v6);
// attackalert: Host IP has been blocked via wrappers with string: "LINE"
std::string blocked_wrappers(std::string_view ip, std::string_view line);
// attackalert: Host IP has been blocked via dropped route using command: "CMD"   (custom KILL_ROUTE)
std::string blocked_route_cmd(std::string_view ip, std::string_view cmd);
// attackalert: External command run for host: IP using command: "CMD"
std::string external_command(std::string_view ip, std::string_view cmd);

// --- errors (adminalert / securityalert) ------------------------------------
// adminalert: ERROR: There was an error trying to block host (nft set) IP: WHY
std::string nft_ban_failed(std::string_view ip, std::string_view why);
// adminalert: cannot open hosts.deny file: PATH for blocking. (WHY)
std::string hosts_deny_failed(std::string_view path, std::string_view why);
// securityalert: ERROR: There was an error trying to block host IP
std::string security_block_error(std::string_view ip);
// adminalert: ERROR: There was an error trying to run command (exec fail) IP: WHY
std::string run_cmd_exec_failed(std::string_view ip, std::string_view why);
// adminalert: ERROR: There was an error trying to block host (exec fail) IP: WHY   (custom KILL_ROUTE)
std::string route_cmd_exec_failed(std::string_view ip, std::string_view why);
// adminalert: No target variable specified in KILL_ROUTE option. Skipping.   (key: KILL_ROUTE / KILL_HOSTS_DENY)
std::string no_target_variable(std::string_view key);
// adminalert: Error trying to parse KEY option: WHY. Skipping.
std::string bad_command(std::string_view key, std::string_view why);
// adminalert: ERROR: Command for host IP exited with status N: "CMD"   (or "killed by signal N")
std::string command_failed(std::string_view ip, std::string_view cmd, int wait_status);
// adminalert: ERROR: Command for host IP timed out after Ns, terminating: "CMD"
std::string command_timed_out(std::string_view ip, std::string_view cmd, long seconds);
// adminalert: ERROR: N commands still running, not running command for host IP: "CMD"
std::string command_refused(std::string_view ip, std::string_view cmd, size_t running);
// adminalert: ERROR: Cannot open history file: PATH. (WHY)
std::string history_failed(std::string_view path, std::string_view why);
// adminalert: ERROR: Cannot open blocked file: PATH. (WHY)
std::string blocked_failed(std::string_view path, std::string_view why);
// adminalert: Rate limit: N history/blocked records suppressed under a flood
std::string records_suppressed(uint64_t n);
// adminalert: Rate limit: N log lines suppressed
std::string lines_suppressed(uint64_t n);

// --- history / blocked file record (1.2 WriteBlocked) ----------------------
// "%ld - %02d/%02d/%04d %02d:%02d:%02d Host: %s/%s Port: %d %s Blocked" plus '\n';
// date and time are local time (as 1.2's localtime()).
std::string history_record(std::time_t when, std::string_view host, std::string_view ip,
                           uint16_t port, net::L4 proto);

// --- portsentry-nfq's own detection outcomes (no 1.2 equivalent) -----------
// attackalert: protected: REASON: host IP/IP probed TCP port N: never banned
std::string protected_probe(std::string_view reason, std::string_view ip, net::L4 proto, uint16_t port);
// attackalert: SCAN from host: IP/IP to TCP port: N: not banned (ban rate limit reached)
std::string rate_limited(std::string_view scan_name, std::string_view ip, net::L4 proto, uint16_t port);

}  // namespace portsentry::actions::msg
