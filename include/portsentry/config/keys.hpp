// The one table of configuration keys (STYLE §9). Every knob is declared once
// here — legacy name, YAML path, value kind, default, description — and that
// declaration drives the legacy reader, the YAML reader, validation, to_yaml()
// (--import-legacy) and the documentation in etc/portsentry.yaml.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "portsentry/config/config.hpp"

namespace portsentry::config {

// How a value is spelled and checked. The storage type comes from the field.
enum class ValueKind : uint8_t {
    port_list,   // "1,11,6000-6010" (legacy) or a YAML sequence of ports / "a-b" ranges
    port,        // one port number 1..65535
    block,       // 0, 1 or 2
    flag,        // legacy "0"/"1"; YAML true/false
    integer,     // unsigned integer within [min, max]
    path,        // file path; relative paths are relative to the config file's directory
    text,        // free text (PORT_BANNER)
    command,     // argv words, exec'd without a shell (KILL_ROUTE, KILL_RUN_CMD)
    deny_line,   // hosts.deny template, must contain $TARGET$ when set
    duration,    // YAML only: 30s, 10m, 1h, 2d, 1h30m or plain seconds
    mode,        // YAML only: off|classic|stealth|advanced
    steer,       // YAML only: auto|queue|xt-queue|nflog
    url_list,    // YAML only: one http(s) URL, or a sequence of them; "" or [] = none
    duration_ms, // YAML only: 100ms, 1s, 1s500ms, 2m or plain seconds; bounds in ms
};

// Pointer to the Config member a key stores into.
// (uint32_t is unsigned here: ban_set_size and crowdsec.fleet_set_size are unsigned*.)
using FieldRef = std::variant<bool*, int*, unsigned*, uint16_t*, size_t*, std::string*,
                              std::vector<PortRange>*, std::chrono::seconds*, Mode*, Steer*,
                              std::vector<std::string>*, std::chrono::milliseconds*>;

struct KeyInfo {
    std::string_view yaml;      // dotted YAML path: "tcp.ports", "ban_time"
    std::string_view legacy;    // portsentry 1.2 name ("" = YAML only)
    ValueKind kind;
    std::string_view default_value;  // the default, as YAML text (matches Config{})
    // Default when read from a legacy file, if different (nullptr = same).
    const char* legacy_default;
    uint64_t min, max;          // integer/duration bounds (seconds for durations, ms for duration_ms)
    bool required;              // path/text: must not be empty
    std::string_view description;  // one paragraph: to_yaml() comments and docs
    FieldRef (*field)(Config&);
};

// All keys, in documentation order (tcp.*, udp.*, then the rest).
std::span<const KeyInfo> keys();
const KeyInfo* find_yaml_key(std::string_view dotted_path);
const KeyInfo* find_legacy_key(std::string_view name);  // exact, case-sensitive as 1.2

enum class Syntax : uint8_t { legacy, yaml };

// Parses `text` as the key's kind and stores it into c. Returns an error
// message that says what was expected, or nullopt on success.
std::optional<std::string> set_value(const KeyInfo& k, Config& c, std::string_view text, Syntax syn);
// One item of a url_list value (a YAML sequence's element): nullopt when it
// is a valid URL, else "'URL': why: expected ...".
std::optional<std::string> url_item_error(const KeyInfo& k, std::string_view url, Syntax syn);
// The key's current value in c, as YAML text ("[1, 11, 15-20]", "1h", "\"...\"";
// a url_list: "\"\"", "\"URL\"" or "[\"URL\", \"URL\"]").
std::string format_value(const KeyInfo& k, const Config& c);
// What a value of this kind looks like, for "expected ..." messages.
std::string expected_text(const KeyInfo& k, Syntax syn);

// True when every table key has the same value in a and b and both ignore
// sets hold the same prefixes (source_file/legacy are not settings).
bool same_settings(const Config& a, const Config& b);

// ---- value helpers (also used by the CLI) ---------------------------------

// "1,11,6000-6010" → ranges, in the given order. Whitespace around items is
// tolerated; an error says which item is wrong and what was expected.
struct PortListResult {
    std::vector<PortRange> ranges;
    std::string error;  // empty = ok
};
PortListResult parse_port_list(std::string_view text);
std::string format_port_list(const std::vector<PortRange>& ranges);  // "1, 11, 15-20"

// "30s", "10m", "1h", "2d", "1h30m", "3600" → seconds.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::seconds s);  // largest exact unit: "1h", "90s", "0"

// "100ms", "1s", "2m", "1s500ms", "1h", "2d" (units largest first, each once)
// or plain seconds ("3") → milliseconds.
std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text);
// Largest exact unit: "100ms", "1s", "1500ms", "2m", "0".
std::string format_duration_ms(std::chrono::milliseconds ms);

// crowdsec.lapi_url: http://HOST[:PORT][/PATH] or https://..., HOST a name,
// an IPv4 address or an IPv6 address in brackets. No user@ (the secrets
// live in their files), no ?query, no #fragment, no blanks or commas
// (several URLs are a YAML list).
struct LapiUrl {
    bool https = false;
    std::string host;   // without the brackets of an IPv6 address
    uint16_t port = 0;  // as written, else 80 (http) or 443 (https)
    std::string path;   // "" or "/..." as written
};
// nullopt with *error: what is wrong (never "expected ...": callers add it).
std::optional<LapiUrl> parse_lapi_url(std::string_view text, std::string* error);

// The first shell construct in a command we exec without a shell:
// "&&", "||", "|", ";", "&", ">", "<", "$(", "`", newline. nullopt = none.
std::optional<std::string> find_shell_syntax(std::string_view command);

// A command template (KILL_RUN_CMD, custom KILL_ROUTE) as argv words: split on
// blanks (space, tab); a double-quoted run ("a b") stays in one word and loses
// its quotes; quotes may sit inside a word (--opt="a b"); "" is an empty word.
// No escapes, no other quoting: the template is the admin's, not a shell
// script. nullopt with *error: an unterminated quote (with its offset), an
// empty template, an empty program name. The one copy: load checks it, the
// actions layer runs it.
std::optional<std::vector<std::string>> split_command(std::string_view tmpl, std::string* error);

// metrics.listen: "ADDRESS:PORT" with an IPv4 address or "[ADDRESS]:PORT"
// with an IPv6 one; port 1-65535. No host names (resolution at start would
// make the bound address depend on DNS), no bare port (an explicit address
// is what keeps an unauthenticated endpoint off the public interfaces).
struct ListenAddress {
    net::IpAddr addr;
    uint16_t port = 0;
    std::string to_string() const;  // "127.0.0.1:9470", "[::1]:9470"
};
// nullopt with *error: what is wrong and what was expected.
std::optional<ListenAddress> parse_listen(std::string_view text, std::string* error);

// 1.2 read PORT_BANNER into a MAXBUF (1024) buffer.
inline constexpr size_t kMaxBannerLength = 1024;
// "" when `text` may be PORT_BANNER (it goes verbatim to attackers' sockets);
// else why: longer than kMaxBannerLength, or a control character other than
// \r \n \t (with its offset). Bytes >= 0x80 (UTF-8) are allowed.
std::string banner_error(std::string_view text);

// Case-insensitive Levenshtein distance.
size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate if it is plausibly a typo of `word`, else "".
std::string did_you_mean(std::string_view word, std::span<const std::string> candidates);

enum class Format : uint8_t { yaml, legacy };
// Legacy when the first meaningful line is KEY=... / KEY = ...; YAML otherwise.
Format detect_format(std::string_view text);

// The KEYS section of portsentry-nfq.yaml(5) as roff, one entry per table key
// (the page holds a copy between the '.\" BEGIN GENERATED KEYS' and
// '.\" END GENERATED KEYS' lines; gen-man-keys --update rewrites it).
std::string render_man_keys();
// Keys whose entry uses hand-written roff (man_details.inc) instead of the
// description; each must be a table key.
std::vector<std::string_view> man_detail_keys();

// --import-legacy DIR_OR_FILE: a directory means DIR/portsentry.conf.
// Ignore files are not loaded (they stay files; the YAML points at them).
Config import_legacy(const std::string& dir_or_file, const LoadOptions& opts = {});

}  // namespace portsentry::config
