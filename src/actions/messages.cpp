#include "portsentry/actions/messages.hpp"

#include <sys/wait.h>

#include <fmt/format.h>

namespace portsentry::actions::msg {

std::string tcp_scan(std::string_view scan_name, std::string_view host, std::string_view ip,
                     uint16_t port) {
    return fmt::format("attackalert: {} from host: {}/{} to TCP port: {}", scan_name, host, ip, port);
}

std::string udp_scan(std::string_view host, std::string_view ip, uint16_t port) {
    return fmt::format("attackalert: UDP scan from host: {}/{} to UDP port: {}", host, ip, port);
}

std::string ip_options(std::string_view host, std::string_view ip, net::L4 proto, uint16_t port) {
    return fmt::format(
        "attackalert: Packet from host: {}/{} to {} port: {} has IP options set (detection "
        "avoidance technique).",
        host, ip, net::to_string(proto), port);
}

std::string already_blocked(std::string_view host, std::string_view ip) {
    return fmt::format("attackalert: Host: {}/{} is already blocked Ignoring", host, ip);
}

std::string could_not_block(std::string_view host, std::string_view ip) {
    return fmt::format("attackalert: ERROR: Could not block host {}/{} !!", host, ip);
}

std::string connect(std::string_view host, std::string_view ip, net::L4 proto, uint16_t port) {
    return fmt::format("attackalert: Connect from host: {}/{} to {} port: {}", host, ip,
                       net::to_string(proto), port);
}

std::string classic_already_blocked(std::string_view ip) {
    return fmt::format("attackalert: Host: {} is already blocked. Ignoring", ip);
}

std::string classic_could_not_block(std::string_view ip) {
    return fmt::format("attackalert: ERROR: Could not block host {} !!", ip);
}

std::string ignoring_response(net::L4 proto) {
    return fmt::format("attackalert: Ignoring {} response per configuration file setting.",
                       net::to_string(proto));
}

std::string blocked_nft(std::string_view ip, bool v6) {
    return fmt::format("attackalert: Host {} has been blocked via nft set inet portsentry {}", ip,
                       v6 ? "banned6" : "banned");
}

std::string blocked_wrappers(std::string_view ip, std::string_view line) {
    return fmt::format("attackalert: Host {} has been blocked via wrappers with string: \"{}\"", ip,
                       line);
}

std::string blocked_route_cmd(std::string_view ip, std::string_view cmd) {
    return fmt::format(
        "attackalert: Host {} has been blocked via dropped route using command: \"{}\"", ip, cmd);
}

std::string external_command(std::string_view ip, std::string_view cmd) {
    return fmt::format("attackalert: External command run for host: {} using command: \"{}\"", ip,
                       cmd);
}

std::string nft_ban_failed(std::string_view ip, std::string_view why) {
    return fmt::format("adminalert: ERROR: There was an error trying to block host (nft set) {}: {}",
                       ip, why);
}

std::string hosts_deny_failed(std::string_view path, std::string_view why) {
    return fmt::format("adminalert: cannot open hosts.deny file: {} for blocking. ({})", path, why);
}

std::string security_block_error(std::string_view ip) {
    return fmt::format("securityalert: ERROR: There was an error trying to block host {}", ip);
}

std::string run_cmd_exec_failed(std::string_view ip, std::string_view why) {
    return fmt::format(
        "adminalert: ERROR: There was an error trying to run command (exec fail) {}: {}", ip, why);
}

std::string route_cmd_exec_failed(std::string_view ip, std::string_view why) {
    return fmt::format(
        "adminalert: ERROR: There was an error trying to block host (exec fail) {}: {}", ip, why);
}

std::string no_target_variable(std::string_view key) {
    return fmt::format("adminalert: No target variable specified in {} option. Skipping.", key);
}

std::string bad_command(std::string_view key, std::string_view why) {
    return fmt::format("adminalert: Error trying to parse {} option: {}. Skipping.", key, why);
}

std::string command_failed(std::string_view ip, std::string_view cmd, int wait_status) {
    if (WIFSIGNALED(wait_status))
        return fmt::format(
            "adminalert: ERROR: Command for host {} was killed by signal {}: \"{}\"", ip,
            WTERMSIG(wait_status), cmd);
    return fmt::format("adminalert: ERROR: Command for host {} exited with status {}: \"{}\"", ip,
                       WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1, cmd);
}

std::string command_timed_out(std::string_view ip, std::string_view cmd, long seconds) {
    return fmt::format(
        "adminalert: ERROR: Command for host {} timed out after {}s, terminating: \"{}\"", ip,
        seconds, cmd);
}

std::string command_refused(std::string_view ip, std::string_view cmd, size_t running) {
    return fmt::format(
        "adminalert: ERROR: {} commands still running, not running command for host {}: \"{}\"",
        running, ip, cmd);
}

std::string history_failed(std::string_view path, std::string_view why) {
    return fmt::format("adminalert: ERROR: Cannot open history file: {}. ({})", path, why);
}

std::string blocked_failed(std::string_view path, std::string_view why) {
    return fmt::format("adminalert: ERROR: Cannot open blocked file: {}. ({})", path, why);
}

std::string records_suppressed(uint64_t n) {
    return fmt::format(
        "adminalert: Rate limit: {} history/blocked records suppressed under a flood", n);
}

std::string lines_suppressed(uint64_t n) {
    return fmt::format("adminalert: Rate limit: {} log lines suppressed", n);
}

std::string history_record(std::time_t when, std::string_view host, std::string_view ip,
                           uint16_t port, net::L4 proto) {
    struct tm tm {};
    localtime_r(&when, &tm);  // 1.2 used localtime(); _r because the resolver has threads
    return fmt::format("{} - {:02d}/{:02d}/{:04d} {:02d}:{:02d}:{:02d} Host: {}/{} Port: {} {} Blocked\n",
                       static_cast<long>(when), tm.tm_mon + 1, tm.tm_mday, tm.tm_year + 1900,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, host, ip, port, net::to_string(proto));
}

std::string protected_probe(std::string_view reason, std::string_view ip, net::L4 proto, uint16_t port) {
    return fmt::format("attackalert: protected: {}: host {}/{} probed {} port {}: never banned", reason, ip, ip,
                       net::to_string(proto), port);
}

std::string rate_limited(std::string_view scan_name, std::string_view ip, net::L4 proto, uint16_t port) {
    return fmt::format("attackalert: {} from host: {}/{} to {} port: {}: not banned (ban rate limit reached)",
                       scan_name, ip, ip, net::to_string(proto), port);
}

}  // namespace portsentry::actions::msg
