// The value helpers behind the key table's kinds (ports, durations in seconds
// and milliseconds, listen addresses, LAPI URLs), the typo hints and format
// detection; the table and its per-kind dispatch are keys.cpp.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/config/keys.hpp"

namespace portsentry::config {

namespace detail {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

std::string_view trim_space(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// Strict unsigned decimal: digits only, no sign, no overflow.
std::optional<uint64_t> parse_uint(std::string_view s) {
    if (s.empty()) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace detail

namespace {
using detail::lower;
using detail::parse_uint;
std::string_view trim(std::string_view s) { return detail::trim_space(s); }
}  // namespace

std::string ListenAddress::to_string() const {
    return addr.is_v6() ? fmt::format("[{}]:{}", addr.to_string(), port) : fmt::format("{}:{}", addr.to_string(), port);
}

std::optional<ListenAddress> parse_listen(std::string_view text, std::string* error) {
    auto fail = [&](std::string why) -> std::optional<ListenAddress> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return fail("'[' without ']'");
        host = text.substr(1, close - 1);
        if (close + 1 >= text.size() || text[close + 1] != ':') return fail("no :PORT after the ']'");
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return fail("no :PORT");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return fail("an IPv6 address must be written in brackets");
    }
    if (host.empty()) return fail("no address before the port");
    auto a = net::IpAddr::parse(host);
    if (!a) return fail(fmt::format("'{}' is not an IP address", host));
    if (text.front() == '[' && !a->is_v6()) return fail(fmt::format("'{}' in brackets is not an IPv6 address", host));
    auto p = parse_uint(port);
    if (!p || *p < 1 || *p > 65535) return fail(fmt::format("'{}' is not a port 1-65535", port));
    return ListenAddress{*a, static_cast<uint16_t>(*p)};
}

PortListResult parse_port_list(std::string_view text) {
    PortListResult r;
    text = trim(text);
    if (text.empty()) return r;  // an empty list is a valid value; validation decides if needed
    auto port = [&](std::string_view s, uint16_t& out) -> bool {
        s = trim(s);
        auto v = parse_uint(s);
        if (!v) {
            r.error = s.empty() ? std::string("empty item in port list")
                                : fmt::format("'{}' is not a port number", s);
            return false;
        }
        if (*v < 1 || *v > 65535) {
            r.error = fmt::format("port {} is out of range", *v);
            return false;
        }
        out = static_cast<uint16_t>(*v);
        return true;
    };
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string_view::npos) comma = text.size();
        std::string_view item = trim(text.substr(pos, comma - pos));
        PortRange pr;
        size_t dash = item.find('-');
        if (dash == std::string_view::npos) {
            if (!port(item, pr.lo)) return r;
            pr.hi = pr.lo;
        } else {
            if (!port(item.substr(0, dash), pr.lo) || !port(item.substr(dash + 1), pr.hi)) {
                if (r.error.rfind("empty", 0) == 0 || r.error.find("is not a port") != std::string::npos)
                    r.error = fmt::format("bad range '{}'", item);
                return r;
            }
            if (pr.lo > pr.hi) {
                r.error = fmt::format("bad range '{}': start is greater than end", item);
                return r;
            }
        }
        r.ranges.push_back(pr);
        pos = comma + 1;
    }
    return r;
}

std::string format_port_list(const std::vector<PortRange>& ranges) {
    std::string out;
    for (const auto& pr : ranges) {
        if (!out.empty()) out += ", ";
        out += pr.lo == pr.hi ? std::to_string(pr.lo) : fmt::format("{}-{}", pr.lo, pr.hi);
    }
    return out;
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    // One grammar for both kinds (parse_duration_ms): whole seconds here.
    auto ms = parse_duration_ms(text);
    if (!ms || ms->count() % 1000 != 0) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::seconds>(*ms);
}

std::string format_duration(std::chrono::seconds s) {
    const int64_t v = s.count();
    if (v == 0) return "0";
    if (v % 86400 == 0) return fmt::format("{}d", v / 86400);
    if (v % 3600 == 0) return fmt::format("{}h", v / 3600);
    if (v % 60 == 0) return fmt::format("{}m", v / 60);
    return fmt::format("{}s", v);
}

std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text) {
    text = trim(text);
    if (text.empty()) return std::nullopt;
    constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (auto plain = parse_uint(text)) {  // plain seconds, as for the other durations
        if (*plain > kMax / 1000) return std::nullopt;
        return std::chrono::milliseconds(static_cast<int64_t>(*plain * 1000));
    }
    static constexpr std::array<std::pair<std::string_view, uint64_t>, 5> units{
        {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}}};
    uint64_t total = 0;
    int last_unit = -1;
    size_t i = 0;
    while (i < text.size()) {
        size_t j = i;
        while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
        size_t k = j;
        while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
        if (j == i || k == j) return std::nullopt;
        auto n = parse_uint(text.substr(i, j - i));
        if (!n) return std::nullopt;
        const std::string unit = lower(text.substr(j, k - j));
        int u = -1;
        for (int x = 0; x < static_cast<int>(units.size()); ++x)
            if (units[x].first == unit) u = x;
        // Largest first, each once: "1s500ms", not "500ms1s".
        if (u < 0 || u <= last_unit) return std::nullopt;
        last_unit = u;
        const uint64_t mul = units[u].second;
        if (*n > (kMax - total) / mul) return std::nullopt;
        total += *n * mul;
        i = k;
    }
    return std::chrono::milliseconds(static_cast<int64_t>(total));
}

std::string format_duration_ms(std::chrono::milliseconds ms) {
    const int64_t v = ms.count();
    if (v == 0) return "0";
    if (v % 1000 != 0) return fmt::format("{}ms", v);
    return format_duration(std::chrono::seconds(v / 1000));
}

std::optional<LapiUrl> parse_lapi_url(std::string_view text, std::string* error) {
    auto fail = [&](std::string why) -> std::optional<LapiUrl> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    if (text.empty()) return fail("empty URL");
    if (text.find(',') != std::string_view::npos)
        return fail("a comma in the URL: give several URLs as a YAML list, e.g. "
                    "[\"http://192.0.2.1:8080\", \"http://192.0.2.2:8080\"]");
    for (char ch : text) {
        const auto u = static_cast<unsigned char>(ch);
        if (std::isspace(u)) return fail("a blank in the URL (several URLs go in a YAML list)");
        if (u < 0x20 || u == 0x7f) return fail(fmt::format("control character 0x{:02x} in the URL", u));
    }
    LapiUrl url;
    const auto sep = text.find("://");
    if (sep == std::string_view::npos) return fail("no http:// or https:// in front");
    const std::string scheme = lower(text.substr(0, sep));
    if (scheme != "http" && scheme != "https")
        return fail(fmt::format("scheme '{}' is not http or https", text.substr(0, sep)));
    url.https = scheme == "https";
    std::string_view rest = text.substr(sep + 3);
    if (rest.find('?') != std::string_view::npos) return fail("a query (?...) in the URL: give the LAPI's base URL");
    if (rest.find('#') != std::string_view::npos) return fail("a fragment (#...) in the URL: give the LAPI's base URL");
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) url.path = std::string(rest.substr(slash));
    if (authority.find('@') != std::string_view::npos)
        return fail("user@ in the URL: the credentials go in crowdsec.password_file and crowdsec.bouncer_key_file");
    if (authority.empty()) return fail("no host after the scheme");
    std::string_view host, port;
    bool has_port = false;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return fail("'[' without ']'");
        host = authority.substr(1, close - 1);
        auto a = net::IpAddr::parse(host);
        if (!a || !a->is_v6()) return fail(fmt::format("'{}' in brackets is not an IPv6 address", host));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail("text after the ']': expected :PORT or nothing");
            has_port = true;
            port = after.substr(1);
        }
    } else {
        const auto colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            has_port = true;
            if (port.find(':') != std::string_view::npos)
                return fail("an IPv6 address must be written in brackets, e.g. http://[2001:db8::1]:8080");
        }
        if (host.empty()) return fail("no host before the port");
        for (char ch : host) {
            const auto u = static_cast<unsigned char>(ch);
            if (!std::isalnum(u) && ch != '-' && ch != '.' && ch != '_')
                return fail(fmt::format("'{}' is not a host name or address", host));
        }
    }
    url.host = std::string(host);
    if (has_port) {
        auto p = parse_uint(port);
        if (!p || *p < 1 || *p > 65535) return fail(fmt::format("'{}' is not a port 1-65535", port));
        url.port = static_cast<uint16_t>(*p);
    } else {
        url.port = url.https ? 443 : 80;
    }
    return url;
}

std::optional<std::string> find_shell_syntax(std::string_view cmd) {
    // Longest tokens first so "&&" is reported rather than "&".
    static constexpr std::array<std::string_view, 10> tokens{"&&", "||", "$(", "|", ";", "&",
                                                             ">", "<", "`", "\n"};
    size_t best = std::string_view::npos;
    std::string_view found;
    for (auto t : tokens) {
        size_t p = cmd.find(t);
        if (p != std::string_view::npos && (p < best || (p == best && t.size() > found.size()))) {
            best = p;
            found = t;
        }
    }
    if (best == std::string_view::npos) return std::nullopt;
    return found == "\n" ? std::string("a newline") : std::string(found);
}

size_t edit_distance(std::string_view a, std::string_view b) {
    const std::string x = lower(a), y = lower(b);
    std::vector<size_t> prev(y.size() + 1), cur(y.size() + 1);
    for (size_t j = 0; j <= y.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= x.size(); ++i) {
        cur[0] = i;
        for (size_t j = 1; j <= y.size(); ++j) {
            const size_t subst = prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, subst});
        }
        std::swap(prev, cur);
    }
    return prev[y.size()];
}

std::string did_you_mean(std::string_view word, std::span<const std::string> candidates) {
    // A third of the word's length (at least 2) separates typos from other words:
    // TCP_PORT → TCP_PORTS (1), but SCAN → none.
    const size_t limit = std::max<size_t>(2, word.size() / 3);
    size_t best = limit + 1;
    std::string out;
    for (const auto& c : candidates) {
        size_t d = edit_distance(word, c);
        if (d < best) {
            best = d;
            out = c;
        }
    }
    return out;
}

Format detect_format(std::string_view text) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = trim(text.substr(pos, nl - pos));
        pos = nl + 1;
        if (line.empty() || line.front() == '#') continue;
        size_t i = 0;
        while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) ++i;
        if (i == 0) return Format::yaml;
        std::string_view rest = trim(line.substr(i));
        if (!rest.empty() && rest.front() == '=') return Format::legacy;
        // An upper-case 1.2 key with its '=' missing (TCP_PORTS "1,11") is a
        // legacy typo, best reported by the legacy reader at its own line; a
        // pasted "TCP_PORTS:" stays YAML (which then names the YAML key).
        const std::string_view ident = line.substr(0, i);
        const bool upper = std::none_of(ident.begin(), ident.end(),
                                        [](char ch) { return std::islower(static_cast<unsigned char>(ch)); });
        return upper && (rest.empty() || rest.front() != ':') ? Format::legacy : Format::yaml;
    }
    return Format::yaml;  // empty file: all defaults, in the native format
}

}  // namespace portsentry::config
