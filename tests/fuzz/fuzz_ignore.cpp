// libFuzzer harness: the ignore-file grammar (one address or CIDR per line,
// '#' comments, blank lines) through net::Cidr::parse into a net::CidrSet.
// Oracles: every accepted prefix round-trips through its text form, is
// covered by the set, and the trie agrees with a linear scan.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "portsentry/net/address.hpp"

using namespace portsentry::net;

namespace {

std::string_view trim(std::string_view s) {
    constexpr std::string_view ws = " \t\r\v\f";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

void check(bool ok) {
    if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    CidrSet set;
    std::vector<Cidr> accepted;

    size_t pos = 0;
    while (pos <= text.size()) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (const size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = trim(line);
        if (line.empty()) continue;

        // A bare address that parses must print and re-parse to itself.
        if (const auto a = IpAddr::parse(line)) {
            const auto again = IpAddr::parse(a->to_string());
            check(again && *again == *a);
            check(a->unmapped().unmapped() == a->unmapped());
        }

        const auto c = Cidr::parse(line);
        if (!c) continue;
        check(c->prefix <= c->addr.bits());
        check(c->contains(c->addr));
        const auto again = Cidr::parse(c->to_string());
        check(again && *again == *c);
        set.insert(*c);
        accepted.push_back(*c);
        check(set.contains(c->addr));
        const auto m = set.match(c->addr);
        check(m && m->prefix >= c->prefix && m->contains(c->addr));
    }

    // The trie against a linear scan, for each accepted network address and
    // its last address (all host bits set), where off-by-one errors live.
    for (const Cidr& c : accepted) {
        IpAddr last = c.addr;
        for (unsigned i = c.prefix; i < last.bits(); ++i)
            last.bytes[i / 8] |= static_cast<uint8_t>(0x80u >> (i % 8));
        for (const IpAddr& a : {c.addr, last}) {
            int best = -1;
            for (const Cidr& d : accepted)
                if (d.contains(a) && d.prefix > best) best = d.prefix;
            const auto m = set.match(a);
            check(m && m->prefix == best);
        }
    }
    check(set.size() <= accepted.size());

    // Copies and moves keep the contents (ASan checks the memory side).
    CidrSet copy(set);
    check(copy.size() == set.size());
    CidrSet moved(std::move(copy));
    check(moved.size() == set.size() && copy.empty());  // NOLINT(bugprone-use-after-move)
    for (const Cidr& c : accepted) check(moved.contains(c.addr));
    return 0;
}
