// IpAddr, Cidr and CidrSet (see address.hpp).
#include "portsentry/net/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>
#include <utility>

namespace portsentry::net {

// address.hpp spells the families as 2 and 10 so it needs no system header;
// make sure they are what the C library says.
static_assert(AF_INET == 2 && AF_INET6 == 10, "address.hpp hard-codes Linux AF_* values");

// ---------------------------------------------------------------- IpAddr

IpAddr IpAddr::v4(uint32_t host_order) {
    IpAddr a;
    a.family = AF_INET;
    a.bytes[0] = static_cast<uint8_t>(host_order >> 24);
    a.bytes[1] = static_cast<uint8_t>(host_order >> 16);
    a.bytes[2] = static_cast<uint8_t>(host_order >> 8);
    a.bytes[3] = static_cast<uint8_t>(host_order);
    return a;
}

IpAddr IpAddr::from_bytes(uint8_t family, const uint8_t* p) {
    IpAddr a;
    if (family == AF_INET) {
        a.family = AF_INET;
        std::memcpy(a.bytes.data(), p, 4);
    } else if (family == AF_INET6) {
        a.family = AF_INET6;
        std::memcpy(a.bytes.data(), p, 16);
    }
    // Any other family yields the unset address rather than reading a guessed length.
    return a;
}

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    // inet_pton needs a NUL-terminated string; the longest valid text form is
    // INET6_ADDRSTRLEN - 1 (45) characters ("ffff:...:255.255.255.255").
    char buf[INET6_ADDRSTRLEN];
    if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
    // An embedded NUL would make inet_pton see a shorter, valid-looking prefix.
    if (text.find('\0') != std::string_view::npos) return std::nullopt;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';

    IpAddr a;
    // inet_pton(AF_INET) accepts only the strict dotted quad (no "10.1", no
    // octal/hex forms inet_aton would take), which is what an ignore file means.
    if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
        a.family = AF_INET;
        return a;
    }
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
        a.family = AF_INET6;
        return a;
    }
    return std::nullopt;
}

std::string IpAddr::to_string() const {
    if (family != AF_INET && family != AF_INET6) return {};
    char buf[INET6_ADDRSTRLEN];
    if (inet_ntop(family, bytes.data(), buf, sizeof buf) == nullptr) return {};
    return buf;
}

IpAddr IpAddr::unmapped() const {
    static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET6 && std::memcmp(bytes.data(), kMappedPrefix, sizeof kMappedPrefix) == 0)
        return from_bytes(AF_INET, bytes.data() + 12);
    return *this;
}

// ---------------------------------------------------------------- hashing

namespace detail {

static inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t load_le64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

// SipHash-2-4 (Aumasson & Bernstein, 2012), written from the paper.
uint64_t siphash24(const std::array<uint8_t, 16>& key, const uint8_t* data, size_t len) noexcept {
    const uint64_t k0 = load_le64(key.data()), k1 = load_le64(key.data() + 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    auto round = [&] {
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
    };
    const size_t full = len - len % 8;
    for (size_t i = 0; i < full; i += 8) {
        const uint64_t m = load_le64(data + i);
        v3 ^= m;
        round();
        round();
        v0 ^= m;
    }
    uint64_t last = static_cast<uint64_t>(len & 0xff) << 56;
    for (size_t i = 0; i < len % 8; ++i) last |= static_cast<uint64_t>(data[full + i]) << (8 * i);
    v3 ^= last;
    round();
    round();
    v0 ^= last;
    v2 ^= 0xff;
    round();
    round();
    round();
    round();
    return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace detail

// One random key per process, drawn on first use: an attacker who picks the
// source addresses of a flood must not be able to aim them at one bucket of a
// per-source table (STYLE §10). This is the only place the net layer touches
// the kernel (getrandom via random_device), once.
static const std::array<uint8_t, 16>& process_hash_key() {
    static const std::array<uint8_t, 16> key = [] {
        std::array<uint8_t, 16> k{};
        std::random_device rd;
        for (size_t i = 0; i < k.size(); i += 4) {
            const uint32_t r = rd();
            std::memcpy(k.data() + i, &r, 4);
        }
        return k;
    }();
    return key;
}

IpAddrHash::IpAddrHash() : key(process_hash_key()) {}

size_t IpAddrHash::operator()(const IpAddr& a) const noexcept {
    // Hash exactly the meaningful bytes plus the family, so 0.0.0.1 (v4) and
    // ::1 style v6 addresses with equal leading bytes do not collide by design.
    uint8_t buf[17];
    buf[0] = a.family;
    const size_t n = a.family == AF_INET ? 4 : 16;
    std::memcpy(buf + 1, a.bytes.data(), n);
    return static_cast<size_t>(detail::siphash24(key, buf, n + 1));
}

// ---------------------------------------------------------------- Cidr

// Clears every bit of `a` below `prefix`.
static IpAddr mask_host_bits(IpAddr a, unsigned prefix) {
    for (unsigned i = 0; i < a.size(); ++i) {
        const unsigned start = i * 8;
        if (start >= prefix)
            a.bytes[i] = 0;
        else if (prefix - start < 8)
            a.bytes[i] &= static_cast<uint8_t>(0xff00u >> (prefix - start));
    }
    return a;
}

static inline bool bit_at(const IpAddr& a, unsigned i) {
    return (a.bytes[i / 8] >> (7 - i % 8)) & 1u;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    const size_t slash = text.find('/');
    const auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    if (slash == std::string_view::npos) return host(*addr);

    const std::string_view len = text.substr(slash + 1);
    // 1 to 3 decimal digits only: no sign, no spaces, no "/24/8", no "/".
    if (len.empty() || len.size() > 3) return std::nullopt;
    unsigned prefix = 0;
    for (char ch : len) {
        if (ch < '0' || ch > '9') return std::nullopt;
        prefix = prefix * 10 + static_cast<unsigned>(ch - '0');
    }
    if (prefix > addr->bits()) return std::nullopt;
    return Cidr{mask_host_bits(*addr, prefix), static_cast<uint8_t>(prefix)};
}

bool Cidr::contains(const IpAddr& a) const {
    if (a.family != addr.family || addr.family == 0 || prefix > addr.bits()) return false;
    const unsigned whole = prefix / 8;
    if (std::memcmp(a.bytes.data(), addr.bytes.data(), whole) != 0) return false;
    if (prefix % 8 == 0) return true;
    const uint8_t mask = static_cast<uint8_t>(0xff00u >> (prefix % 8));
    return (a.bytes[whole] & mask) == (addr.bytes[whole] & mask);
}

std::string Cidr::to_string() const {
    if (prefix == addr.bits()) return addr.to_string();
    return addr.to_string() + "/" + std::to_string(prefix);
}

// ---------------------------------------------------------------- CidrSet

// Uncompressed binary trie over the address bits, nodes in one vector and
// linked by index (so copying the set is copying a vector). Depth = prefix
// length, so a lookup visits at most 33 / 129 nodes whatever the set size.
// Ignore lists are small; path compression would save memory we do not need.
struct CidrSet::Trie {
    static constexpr uint32_t kNone = 0;  // node 0 is the root: never a child
    struct Node {
        uint32_t child[2] = {kNone, kNone};
        bool terminal = false;  // a prefix ends here
    };
    std::vector<Node> nodes{Node{}};

    // Returns false if the prefix was already present.
    bool insert(const IpAddr& a, unsigned prefix) {
        uint32_t n = 0;
        for (unsigned i = 0; i < prefix; ++i) {
            const unsigned b = bit_at(a, i);
            if (nodes[n].child[b] == kNone) {
                nodes[n].child[b] = static_cast<uint32_t>(nodes.size());
                nodes.emplace_back();  // may reallocate: index, never hold a reference
            }
            n = nodes[n].child[b];
        }
        if (nodes[n].terminal) return false;
        nodes[n].terminal = true;
        return true;
    }

    // Length of the longest stored prefix covering a, or -1.
    int longest(const IpAddr& a) const {
        int best = -1;
        uint32_t n = 0;
        const unsigned bits = a.bits();
        for (unsigned i = 0;; ++i) {
            if (nodes[n].terminal) best = static_cast<int>(i);
            if (i == bits) break;
            const uint32_t next = nodes[n].child[bit_at(a, i)];
            if (next == kNone) break;
            n = next;
        }
        return best;
    }
};

CidrSet::CidrSet() : v4_(nullptr), v6_(nullptr) {}

CidrSet::~CidrSet() {
    delete v4_;
    delete v6_;
}

CidrSet::CidrSet(const CidrSet& o)
    : v4_(o.v4_ ? new Trie(*o.v4_) : nullptr), v6_(nullptr), entries_(o.entries_) {
    // If the second allocation throws, the constructor body never ran and the
    // destructor will not run either: release the first one by hand.
    try {
        v6_ = o.v6_ ? new Trie(*o.v6_) : nullptr;
    } catch (...) {
        delete v4_;
        throw;
    }
}

CidrSet& CidrSet::operator=(const CidrSet& o) {
    if (this != &o) {
        CidrSet tmp(o);  // copy first: on failure *this is untouched
        *this = std::move(tmp);
    }
    return *this;
}

CidrSet::CidrSet(CidrSet&& o) noexcept
    : v4_(std::exchange(o.v4_, nullptr)), v6_(std::exchange(o.v6_, nullptr)),
      entries_(std::move(o.entries_)) {
    o.entries_.clear();  // moved-from: a valid empty set
}

CidrSet& CidrSet::operator=(CidrSet&& o) noexcept {
    if (this != &o) {
        delete v4_;
        delete v6_;
        v4_ = std::exchange(o.v4_, nullptr);
        v6_ = std::exchange(o.v6_, nullptr);
        entries_ = std::move(o.entries_);
        o.entries_.clear();
    }
    return *this;
}

void CidrSet::insert(const Cidr& c) {
    if (!c.addr.is_v4() && !c.addr.is_v6())
        throw std::invalid_argument("CidrSet::insert: address family unset");
    if (c.prefix > c.addr.bits())
        throw std::invalid_argument("CidrSet::insert: prefix /" + std::to_string(c.prefix) +
                                    " longer than the address");
    // A hand-built Cidr may carry host bits; store the normalised form so
    // entries() and match() agree with Cidr::parse.
    const Cidr norm{mask_host_bits(c.addr, c.prefix), c.prefix};
    Trie*& t = norm.addr.is_v4() ? v4_ : v6_;
    if (t == nullptr) t = new Trie();
    // Grow first (geometrically, as push_back would) so that the push_back
    // below cannot throw after the trie has changed.
    if (entries_.size() == entries_.capacity()) entries_.reserve(std::max<size_t>(8, 2 * entries_.size()));
    if (t->insert(norm.addr, norm.prefix)) entries_.push_back(norm);
}

bool CidrSet::contains(const IpAddr& a) const {
    const Trie* t = a.is_v4() ? v4_ : a.is_v6() ? v6_ : nullptr;
    return t != nullptr && t->longest(a) >= 0;
}

std::optional<Cidr> CidrSet::match(const IpAddr& a) const {
    const Trie* t = a.is_v4() ? v4_ : a.is_v6() ? v6_ : nullptr;
    if (t == nullptr) return std::nullopt;
    const int len = t->longest(a);
    if (len < 0) return std::nullopt;
    return Cidr{mask_host_bits(a, static_cast<unsigned>(len)), static_cast<uint8_t>(len)};
}

}  // namespace portsentry::net
