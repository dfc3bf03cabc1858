#include "portsentry/daemon/state_format.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace portsentry::daemon {

using nlohmann::json;

std::string format_epoch(int64_t t) {
    if (t == 0) return "never";
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buf;
}

std::optional<int64_t> BanRecord::remaining(int64_t now) const {
    if (expires == 0) return std::nullopt;
    return expires > now ? expires - now : 0;
}

namespace {

// The fast path of load(): a line exactly as append_record_line() writes it (a
// flat object, keys we know each at most once, plain ASCII strings without
// escapes, non-negative integers that fit their field) is read in one pass,
// ~20x faster than building an nlohmann DOM, which dominated start-up at a
// million records. Anything else (whitespace, escapes, unknown or repeated
// keys, other types, a prefix that does not parse) returns false and the line
// goes through nlohmann as before, with the same result and the same warning.
class FastLine {
public:
    explicit FastLine(std::string_view s) : s_(s) {}

    bool parse(BanRecord& r) {
        if (!eat('{')) return false;
        unsigned seen = 0;
        bool have_prefix = false;
        if (peek() == '}') return false;  // no prefix: nlohmann says why
        for (;;) {
            std::string_view key;
            if (!str(key) || !eat(':')) return false;
            const int k = key_index(key);
            if (k < 0 || (seen & (1u << k))) return false;
            seen |= 1u << k;
            switch (k) {
                case 0: {
                    std::string_view v;
                    if (!str(v)) return false;
                    auto c = net::Cidr::parse(v);
                    if (!c) return false;
                    r.prefix = *c;
                    have_prefix = true;
                    break;
                }
                case 1: if (!str_into(r.origin)) return false; break;
                case 2: if (!num(r.first_seen, INT64_MAX)) return false; break;
                case 3: if (!num(r.last_seen, INT64_MAX)) return false; break;
                case 4: if (!num(r.expires, INT64_MAX)) return false; break;
                case 5: {
                    int64_t v;
                    if (!num(v, UINT32_MAX)) return false;
                    r.count = static_cast<uint32_t>(v);
                    break;
                }
                case 6: {
                    int64_t v;
                    if (!num(v, UINT16_MAX)) return false;
                    r.last_port = static_cast<uint16_t>(v);
                    break;
                }
                case 7: if (!str_into(r.last_proto)) return false; break;
                case 8: if (!str_into(r.last_type)) return false; break;
                case 9: if (!str_into(r.ended)) return false; break;
                default: return false;
            }
            if (eat(',')) continue;
            if (!eat('}')) return false;
            return have_prefix && i_ == s_.size();
        }
    }

private:
    static int key_index(std::string_view k) {
        static constexpr std::string_view keys[] = {"prefix",  "origin",    "first_seen", "last_seen",  "expires",
                                                    "count",   "last_port", "last_proto", "last_type",  "ended"};
        for (int i = 0; i < 10; ++i)
            if (keys[i] == k) return i;
        return -1;
    }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool eat(char c) {
        if (peek() != c) return false;
        ++i_;
        return true;
    }
    bool str(std::string_view& out) {
        if (!eat('"')) return false;
        const size_t b = i_;
        for (; i_ < s_.size(); ++i_) {
            const auto c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') {
                out = s_.substr(b, i_ - b);
                ++i_;
                return true;
            }
            if (c < 0x20 || c >= 0x7f || c == '\\') return false;  // escapes, UTF-8: nlohmann's job
        }
        return false;
    }
    bool str_into(std::string& out) {
        std::string_view v;
        if (!str(v)) return false;
        out.assign(v);
        return true;
    }
    // JSON's integer grammar without a sign: no leading zero, at most `max`.
    bool num(int64_t& out, int64_t max) {
        const size_t b = i_;
        uint64_t v = 0;
        for (; i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9'; ++i_) {
            if (i_ - b >= 18) return false;  // long numbers: nlohmann decides
            v = v * 10 + static_cast<uint64_t>(s_[i_] - '0');
        }
        const size_t len = i_ - b;
        if (len == 0 || (len > 1 && s_[b] == '0')) return false;
        if (i_ < s_.size() && (s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) return false;
        if (v > static_cast<uint64_t>(max)) return false;
        out = static_cast<int64_t>(v);
        return true;
    }

    std::string_view s_;
    size_t i_ = 0;
};

BanRecord parse_with_nlohmann(std::string_view line) {
    auto j = json::parse(line);
    auto prefix = net::Cidr::parse(j.at("prefix").get<std::string>());
    if (!prefix) throw std::runtime_error("bad prefix");
    BanRecord r;
    r.prefix = *prefix;
    r.origin = j.value("origin", "detector");
    r.first_seen = j.value("first_seen", int64_t{0});
    r.last_seen = j.value("last_seen", int64_t{0});
    r.expires = j.value("expires", int64_t{0});
    r.count = j.value("count", uint32_t{1});
    r.last_port = j.value("last_port", uint16_t{0});
    r.last_proto = j.value("last_proto", "");
    r.last_type = j.value("last_type", "");
    r.ended = j.value("ended", "");
    return r;
}

}  // namespace

std::optional<BanRecord> parse_record_line(std::string_view line) {
    BanRecord r;
    r.count = 1;  // nlohmann's default when the key is absent
    r.origin = "detector";
    if (FastLine(line).parse(r)) return r;
    return std::nullopt;
}

BanRecord read_record_line(std::string_view line) {
    if (auto fast = parse_record_line(line)) return std::move(*fast);
    return parse_with_nlohmann(line);
}

namespace {

// A JSON string literal. The table's strings are ours (origins, scan names,
// prefixes) and plain ASCII: quote them directly, which keeps serializing a
// 100k-record table in tens of ms; anything else goes through nlohmann.
void append_json_string(std::string& out, std::string_view s) {
    bool plain = std::all_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    });
    if (!plain) {
        out += json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
        return;
    }
    out += '"';
    out += s;
    out += '"';
}

void append_field(std::string& out, std::string_view key, int64_t v) {
    out += key;
    const fmt::format_int digits(v);
    out.append(digits.data(), digits.size());
}

}  // namespace

void append_record_line(std::string& out, const BanRecord& r) {
    out += "{\"prefix\":";
    append_json_string(out, r.prefix.to_string());
    out += ",\"origin\":";
    append_json_string(out, r.origin);
    append_field(out, ",\"first_seen\":", r.first_seen);
    append_field(out, ",\"last_seen\":", r.last_seen);
    append_field(out, ",\"expires\":", r.expires);
    append_field(out, ",\"count\":", r.count);
    append_field(out, ",\"last_port\":", r.last_port);
    out += ",\"last_proto\":";
    append_json_string(out, r.last_proto);
    out += ",\"last_type\":";
    append_json_string(out, r.last_type);
    if (!r.ended.empty()) {
        out += ",\"ended\":";
        append_json_string(out, r.ended);
    }
    out += "}\n";
}

void append_journal_erase(std::string& out, const net::Cidr& prefix) {
    out += kJournalErase;
    out += prefix.to_string();
    out += '\n';
}

}  // namespace portsentry::daemon
