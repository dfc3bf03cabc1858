// Bounded per-source state for the engine: an open-addressing hash index over a
// slab of nodes threaded on two intrusive LRU lists. Internal to the engine
// (exposed only so it can be unit-tested on its own).
//
// Why not std::unordered_map + std::list: under a random-source flood every
// probe is a new key, and node-based containers would allocate and free two
// heap nodes per probe. Here memory grows only until the cap is reached and is
// then reused in place, so a flood costs a hash, a probe sequence and an
// eviction, never an allocation.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "portsentry/net/address.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::engine {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

namespace detail {

// What the engine remembers about one source for one protocol. TCP and UDP
// are separate detectors, as in 1.2 (two processes, two blocked files): a host
// reported for TCP probes is still reported when it probes UDP, and vice versa.
// Times and flags are kept apart so the flags pack into bits: the flood test
// holds a whole entry (node and index) under 128 bytes.
struct ProtoTimes {
    TimePoint block_until{};        // valid when blocked && !block_permanent
    TimePoint last_already_log{};   // valid when already_logged
};
struct ProtoFlags {
    bool reported_once : 1 = false;   // reported under BLOCK 0 / dry-run (1.2: "in the blocked file")
    bool blocked : 1 = false;         // this protocol's response is active (hosts.deny, command)
    bool block_permanent : 1 = false;
    bool already_logged : 1 = false;
};

// What the engine remembers about one source.
struct SourceState {
    TimePoint window_start{};       // start of the current SCAN_TRIGGER window
    TimePoint ban_until{};          // valid when banned && !ban_permanent
    TimePoint last_probe{};
    ProtoTimes times[2];            // [0] TCP, [1] UDP (proto_index())
    uint32_t count = 0;             // probes in the current window (both protocols)
    ProtoFlags flags[2];
    // The nft-set ban: it drops every protocol, so it is per source. Set when
    // a report asks for it (ban_by: that report's protocol) or from outside
    // (mark_blocked: restore, admin, escalation; ban_by -1).
    bool banned : 1 = false;
    bool ban_permanent : 1 = false;
    bool last_rate_limited : 1 = false;  // the last probe fired the trigger but hit a ban-rate cap
    int8_t ban_by = -1;

    static constexpr size_t proto_index(net::L4 p) { return p == net::L4::udp ? 1 : 0; }

    // Entries the LRU prefers to keep: forgetting them would re-report the host.
    bool keep() const {
        return banned || flags[0].reported_once || flags[0].blocked || flags[1].reported_once || flags[1].blocked;
    }
};

class SourceTable {
public:
    static constexpr uint32_t npos = UINT32_MAX;

    // `cap` is clamped to [1, 2^30]; the key makes the slot of an address
    // unpredictable to whoever picks the source addresses.
    SourceTable(size_t cap, const std::array<uint8_t, 16>& hash_key);

    // Index of `a`'s entry or npos. Does not change recency.
    uint32_t find(const net::IpAddr& a) const noexcept;

    // Index of `a`'s entry, inserted with a default state if absent, made the
    // most recent of its list. When the table is full the least recently used
    // entry is evicted first (see evict_one() for which list gives it up).
    uint32_t acquire(const net::IpAddr& a) noexcept;

    SourceState& state(uint32_t i) noexcept { return nodes_[i].st; }
    const SourceState& state(uint32_t i) const noexcept { return nodes_[i].st; }
    const net::IpAddr& address(uint32_t i) const noexcept { return nodes_[i].addr; }

    // Re-files entry i on the list matching its state's keep() (call after changing it).
    void settle(uint32_t i) noexcept;

    bool erase(const net::IpAddr& a) noexcept;

    // Lowers or raises the cap; lowering evicts (LRU) down to it at once.
    void set_capacity(size_t cap);

    size_t size() const { return size_; }
    size_t capacity() const { return cap_; }
    size_t kept() const { return lists_[1].count; }  // entries with keep() on their list
    uint64_t evictions() const { return evictions_; }
    // Bytes held by the slab and the index (what the cap bounds).
    size_t memory_bytes() const {
        return nodes_.capacity() * sizeof(Node) + slots_.capacity() * sizeof(Slot);
    }

private:
    struct Node {
        net::IpAddr addr;
        uint32_t hash = 0;     // low 32 bits of the keyed hash: home slot and tag
        uint32_t prev = npos;  // LRU neighbours (towards the head / the tail)
        uint32_t next = npos;
        bool on_keep_list = false;
        SourceState st;
    };
    struct Slot {
        uint32_t node = npos;  // npos = empty
        uint32_t hash = 0;     // copy of Node::hash: probes compare it without touching nodes
    };
    struct List {
        uint32_t head = npos;  // most recent
        uint32_t tail = npos;  // least recent
        size_t count = 0;
    };

    uint32_t hash_of(const net::IpAddr& a) const noexcept;
    size_t slot_of(const net::IpAddr& a, uint32_t h) const noexcept;  // slot index or npos
    void unlink(uint32_t i) noexcept;
    void push_front(uint32_t i, bool keep_list) noexcept;
    void remove_slot(size_t s) noexcept;
    void evict_one() noexcept;
    bool grow() noexcept;  // room for one more node; false when memory ran out
    void rehash(size_t nslots);

    size_t cap_;
    net::IpAddrHash hasher_;
    std::vector<Node> nodes_;   // slab; never larger than cap_
    std::vector<Slot> slots_;   // power of two, load factor <= 1/2
    List lists_[2];             // [0]: plain counting entries, [1]: keep() entries
    uint32_t free_ = npos;      // free nodes (erase()), chained through Node::next
    size_t size_ = 0;
    uint64_t evictions_ = 0;
};

}  // namespace detail
}  // namespace portsentry::engine
