// IPv4/IPv6 addresses, CIDR prefixes and a prefix set with O(prefix-length)
// lookup. Pure value types: no syscalls beyond inet_pton/inet_ntop.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portsentry::net {

// An IPv4 or IPv6 address in network byte order. IPv4 uses bytes[0..3].
struct IpAddr {
    uint8_t family = 0;  // AF_INET or AF_INET6; 0 = unset
    std::array<uint8_t, 16> bytes{};

    static IpAddr v4(uint32_t host_order);
    static IpAddr from_bytes(uint8_t family, const uint8_t* p);  // 4 or 16 bytes
    static std::optional<IpAddr> parse(std::string_view text);   // "192.0.2.1", "2001:db8::1"

    bool is_v4() const { return family == 2; }
    bool is_v6() const { return family == 10; }
    size_t size() const { return is_v4() ? 4 : 16; }
    unsigned bits() const { return is_v4() ? 32 : 128; }
    std::string to_string() const;

    // IPv4-mapped IPv6 (::ffff:a.b.c.d) → the IPv4 address; otherwise itself.
    IpAddr unmapped() const;

    friend bool operator==(const IpAddr&, const IpAddr&) = default;
    friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
};

// Keyed hash (SipHash-2-4) for per-source tables. The default key is random
// per process, so a flood cannot be aimed at one bucket; pass a key for
// reproducible tests.
struct IpAddrHash {
    IpAddrHash();
    explicit IpAddrHash(const std::array<uint8_t, 16>& k) : key(k) {}
    size_t operator()(const IpAddr& a) const noexcept;
    std::array<uint8_t, 16> key;
};

namespace detail {
uint64_t siphash24(const std::array<uint8_t, 16>& key, const uint8_t* data, size_t len) noexcept;
}

// addr/prefix with host bits cleared.
struct Cidr {
    IpAddr addr;
    uint8_t prefix = 0;

    // "192.0.2.0/24", "2001:db8::/32", or a bare address (full-length prefix).
    // Host bits set below the prefix ("192.0.2.1/24") are accepted and cleared.
    static std::optional<Cidr> parse(std::string_view text);
    static Cidr host(const IpAddr& a) { return Cidr{a, static_cast<uint8_t>(a.bits())}; }
    bool contains(const IpAddr& a) const;
    std::string to_string() const;  // "192.0.2.0/24"; bare address for full-length prefixes

    friend bool operator==(const Cidr&, const Cidr&) = default;
};

// A set of prefixes (both families) answering "is this address covered?".
// Binary trie per family: lookup cost is bounded by the prefix length (≤128),
// independent of the number of entries.
class CidrSet {
public:
    CidrSet();
    ~CidrSet();
    CidrSet(const CidrSet&);
    CidrSet& operator=(const CidrSet&);
    CidrSet(CidrSet&&) noexcept;
    CidrSet& operator=(CidrSet&&) noexcept;

    void insert(const Cidr& c);
    bool contains(const IpAddr& a) const;          // covered by any prefix
    // The most specific prefix covering a, if any.
    std::optional<Cidr> match(const IpAddr& a) const;
    size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    const std::vector<Cidr>& entries() const { return entries_; }  // insertion order, deduplicated

private:
    struct Trie;
    Trie* v4_;
    Trie* v6_;
    std::vector<Cidr> entries_;
};

}  // namespace portsentry::net
