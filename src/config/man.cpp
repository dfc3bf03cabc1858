// The KEYS section of portsentry-nfq.yaml(5), rendered from the key table
// (STYLE §9: one table drives parsing, --import-legacy and the docs). The page
// holds a copy between marker lines; a unit test fails when they differ.
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "portsentry/config/keys.hpp"

namespace portsentry::config {

namespace {

#include "man_details.inc"

// Text as roff body text: backslashes escaped, hyphens kept literal (so that
// -tcp is searchable and not a typographic hyphen), and no line that roff
// would take for a request.
std::string roff(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
    return out;
}

// roff() text inside a quoted macro argument, where a '"' would end the
// argument ("" is one literal quote): a default of "" rendered as ".
std::string quoted_arg(std::string_view s) {
    std::string out;
    for (char c : roff(s)) {
        if (c == '"') out += "\\(dq";
        else out += c;
    }
    return out;
}

std::string kind_text(const KeyInfo& k) {
    switch (k.kind) {
    case ValueKind::port_list: return "Port list (numbers and a\\-b ranges)";
    case ValueKind::port: return "Port (1\\-65535)";
    case ValueKind::block: return "Block (0, 1 or 2)";
    case ValueKind::flag: return "Flag (YAML true/false; portsentry.conf 1/0)";
    case ValueKind::integer: return fmt::format("Integer from {} to {}", k.min, k.max);
    case ValueKind::path: return k.required ? "Path (required)" : "Path";
    case ValueKind::text: return "Text";
    case ValueKind::command: return "Command";
    case ValueKind::deny_line: return "hosts.deny line";
    case ValueKind::duration:
        return fmt::format("Duration from {} to {}", format_duration(std::chrono::seconds(k.min)),
                           format_duration(std::chrono::seconds(k.max)));
    case ValueKind::mode: return "off, classic, stealth or advanced";
    case ValueKind::steer: return "auto, queue, xt\\-queue or nflog";
    case ValueKind::url_list: return "URL or list of URLs (http:// or https://)";
    case ValueKind::duration_ms:
        return fmt::format("Duration from {} to {}", format_duration_ms(std::chrono::milliseconds(k.min)),
                           format_duration_ms(std::chrono::milliseconds(k.max)));
    }
    return "Value";
}

std::string section_title(std::string_view sec) {
    if (sec == "tcp") return "TCP (section tcp:)";
    if (sec == "udp") return "UDP (section udp:)";
    if (sec == "protect") return "Never-ban sources (section protect:)";
    if (sec == "metrics") return "Metrics endpoint (section metrics:)";
    if (sec == "crowdsec") return "Fleet on CrowdSec's Local API (section crowdsec:)";
    return "Top level";
}

}  // namespace

std::vector<std::string_view> man_detail_keys() {
    std::vector<std::string_view> out;
    for (const auto& d : kManDetails) out.push_back(d.first);
    return out;
}

std::string render_man_keys() {
    std::string out;
    std::string section = "-";
    for (const auto& k : keys()) {
        const std::string_view y = k.yaml;
        const auto dot = y.rfind('.');
        const std::string_view sec = dot == std::string_view::npos ? "" : y.substr(0, dot);
        if (sec != section) {
            section = std::string(sec);
            out += fmt::format(".SS \"{}\"\n", section_title(sec));
        }
        out += ".TP\n";
        if (k.legacy.empty())
            out += fmt::format(".B {}\nYAML only; {}", roff(y), kind_text(k));
        else
            out += fmt::format(".BR {} \" (\" {} )\n{}", roff(y), roff(k.legacy), kind_text(k));
        out += fmt::format("; default\n.BR \"{}\" .\n", quoted_arg(k.default_value));
        if (k.legacy_default)
            out += fmt::format("In a portsentry.conf file the default is\n.BR \"{}\" .\n",
                               quoted_arg(k.legacy_default));
        std::string body = roff(k.description) + "\n";
        for (const auto& [name, roff_text] : kManDetails)
            if (name == y) body = std::string(roff_text);
        out += ".br\n" + body;
    }
    return out;
}

}  // namespace portsentry::config
