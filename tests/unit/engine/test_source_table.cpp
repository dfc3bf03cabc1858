// engine::detail::SourceTable against simple reference models (std::set, std::list).
#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <random>
#include <set>
#include <sys/socket.h>

#include "portsentry/engine/source_table.hpp"

namespace portsentry::engine::detail {
namespace {

constexpr std::array<uint8_t, 16> kKey{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

// Address number n: even n → IPv4 198.51.x.y (x.y = n), odd n → 2001:db8::n.
// Only identity matters here, not realism.
net::IpAddr addr(uint32_t n) {
    uint8_t b[16] = {};
    if (n % 2 == 0) {
        b[0] = 198; b[1] = 51;
        b[2] = static_cast<uint8_t>(n >> 8);
        b[3] = static_cast<uint8_t>(n);
        return net::IpAddr::from_bytes(AF_INET, b);
    }
    b[0] = 0x20; b[1] = 0x01; b[2] = 0x0d; b[3] = 0xb8;
    for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
    return net::IpAddr::from_bytes(AF_INET6, b);
}

TEST(SourceTable, MatchesASetUnderRandomInsertAndErase) {
    // Cap far above the key space: no eviction, so this checks the index alone
    // (growth, rehash, backward-shift deletion keeping every chain reachable).
    SourceTable t(1 << 20, kKey);
    std::set<uint32_t> model;
    std::mt19937 rng(7);
    for (int op = 0; op < 40000; ++op) {
        const uint32_t n = rng() % 3000;
        if (rng() % 3 == 0) {
            EXPECT_EQ(t.erase(addr(n)), model.erase(n) == 1);
        } else {
            const uint32_t i = t.acquire(addr(n));
            EXPECT_EQ(t.address(i), addr(n));
            model.insert(n);
        }
        ASSERT_EQ(t.size(), model.size());
        if (op % 1000 == 0) {
            for (uint32_t k = 0; k < 3000; ++k)
                ASSERT_EQ(t.find(addr(k)) != SourceTable::npos, model.count(k) == 1) << k;
        }
    }
    EXPECT_EQ(t.evictions(), 0u);
}

TEST(SourceTable, EvictsInLruOrderLikeAListModel) {
    constexpr size_t cap = 50;
    SourceTable t(cap, kKey);
    std::list<uint32_t> model;  // front = most recent
    uint64_t evicted = 0;
    std::mt19937 rng(11);
    for (int op = 0; op < 5000; ++op) {
        const uint32_t n = rng() % 200;
        auto it = std::find(model.begin(), model.end(), n);
        if (rng() % 5 == 0) {
            EXPECT_EQ(t.erase(addr(n)), it != model.end());
            if (it != model.end()) model.erase(it);
        } else {
            t.acquire(addr(n));
            if (it != model.end()) {
                model.erase(it);
            } else if (model.size() == cap) {
                model.pop_back();
                ++evicted;
            }
            model.push_front(n);
        }
        ASSERT_EQ(t.size(), model.size());
        ASSERT_EQ(t.evictions(), evicted);
        for (uint32_t k = 0; k < 200; ++k) {
            const bool in_model = std::find(model.begin(), model.end(), k) != model.end();
            ASSERT_EQ(t.find(addr(k)) != SourceTable::npos, in_model)
                << "op " << op << " addr " << k;
        }
    }
}

TEST(SourceTable, KeptEntriesGoAfterPlainOnesButPlainKeepsAReserve) {
    constexpr size_t cap = 16;  // reserve for plain entries: 16 / 8 = 2
    SourceTable t(cap, kKey);
    for (uint32_t n = 0; n < cap; ++n) {
        const uint32_t i = t.acquire(addr(n));
        t.state(i).banned = true;
        t.settle(i);
    }
    EXPECT_EQ(t.kept(), cap);
    // Two plain newcomers take the two oldest kept entries (the reserve)...
    t.acquire(addr(100));
    t.acquire(addr(101));
    EXPECT_EQ(t.find(addr(0)), SourceTable::npos);
    EXPECT_EQ(t.find(addr(1)), SourceTable::npos);
    EXPECT_NE(t.find(addr(2)), SourceTable::npos);
    // ...after which plain entries replace each other and the bans stay.
    for (uint32_t n = 200; n < 300; ++n) t.acquire(addr(n));
    EXPECT_EQ(t.kept(), cap - 2);
    for (uint32_t n = 2; n < cap; ++n) EXPECT_NE(t.find(addr(n)), SourceTable::npos) << n;
    EXPECT_EQ(t.size(), cap);
    EXPECT_EQ(t.evictions(), 2u + 100u);
}

TEST(SourceTable, SettleMovesBetweenLists) {
    SourceTable t(8, kKey);
    const uint32_t i = t.acquire(addr(1));
    EXPECT_EQ(t.kept(), 0u);
    t.state(i).flags[1].reported_once = true;
    t.settle(i);
    EXPECT_EQ(t.kept(), 1u);
    t.state(i).flags[1].reported_once = false;
    t.settle(i);
    EXPECT_EQ(t.kept(), 0u);
}

TEST(SourceTable, MemoryStopsGrowingAtTheCap) {
    constexpr size_t cap = 1000;
    SourceTable t(cap, kKey);
    for (uint32_t n = 0; n < cap; ++n) t.acquire(addr(n));
    const size_t at_cap = t.memory_bytes();
    for (uint32_t n = cap; n < 50 * cap; ++n) t.acquire(addr(n));
    EXPECT_EQ(t.memory_bytes(), at_cap);
    EXPECT_EQ(t.size(), cap);
    EXPECT_EQ(t.evictions(), 49 * cap);
}

TEST(SourceTable, LoweringTheCapEvictsLeastRecentFirst) {
    SourceTable t(10, kKey);
    for (uint32_t n = 0; n < 10; ++n) t.acquire(addr(n));
    t.set_capacity(4);
    EXPECT_EQ(t.size(), 4u);
    EXPECT_EQ(t.evictions(), 6u);
    for (uint32_t n = 0; n < 6; ++n) EXPECT_EQ(t.find(addr(n)), SourceTable::npos);
    for (uint32_t n = 6; n < 10; ++n) EXPECT_NE(t.find(addr(n)), SourceTable::npos);
}

TEST(SourceTable, ZeroCapStillTracksOneSource) {
    SourceTable t(0, kKey);
    t.acquire(addr(1));
    t.acquire(addr(2));
    EXPECT_EQ(t.capacity(), 1u);
    EXPECT_EQ(t.size(), 1u);
    EXPECT_NE(t.find(addr(2)), SourceTable::npos);
}

TEST(SourceTable, FamiliesAreDistinctKeys) {
    // 198.51.0.1 and 2001:db8:: with the same leading bytes differ by family.
    SourceTable t(8, kKey);
    uint8_t b[16] = {198, 51, 0, 1};
    t.acquire(net::IpAddr::from_bytes(AF_INET, b));
    EXPECT_EQ(t.find(net::IpAddr::from_bytes(AF_INET6, b)), SourceTable::npos);
}

}  // namespace
}  // namespace portsentry::engine::detail
