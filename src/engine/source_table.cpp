#include "portsentry/engine/source_table.hpp"

#include <algorithm>
#include <bit>
#include <new>

namespace portsentry::engine::detail {

namespace {
// 2^30 entries (~100 GB of state) is far beyond any sane max_tracked_sources;
// the bound keeps node indices and the slot count within uint32_t.
constexpr size_t kMaxCap = size_t{1} << 30;
// First allocation: small, so a test engine or an idle daemon costs a few KB.
constexpr size_t kInitialNodes = 64;

size_t clamp_cap(size_t cap) { return std::clamp<size_t>(cap, 1, kMaxCap); }
}  // namespace

SourceTable::SourceTable(size_t cap, const std::array<uint8_t, 16>& hash_key)
    : cap_(clamp_cap(cap)), hasher_(hash_key) {
    // Reserved up front so that acquire() never needs memory for the first
    // entries (it must make progress even if a later allocation fails).
    nodes_.reserve(std::min(cap_, kInitialNodes));
    slots_.assign(std::bit_ceil(2 * std::min(cap_, kInitialNodes)), Slot{});
}

uint32_t SourceTable::hash_of(const net::IpAddr& a) const noexcept {
    // The low 32 bits of a keyed SipHash: enough for a table of at most 2^31
    // slots, and unpredictable without the key, so a chosen set of sources
    // cannot be steered into one probe run.
    return static_cast<uint32_t>(hasher_(a));
}

size_t SourceTable::slot_of(const net::IpAddr& a, uint32_t h) const noexcept {
    const size_t mask = slots_.size() - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
        const Slot& sl = slots_[s];
        if (sl.node == npos) return SIZE_MAX;
        if (sl.hash == h && nodes_[sl.node].addr == a) return s;
    }
}

uint32_t SourceTable::find(const net::IpAddr& a) const noexcept {
    const size_t s = slot_of(a, hash_of(a));
    return s == SIZE_MAX ? npos : slots_[s].node;
}

void SourceTable::unlink(uint32_t i) noexcept {
    Node& n = nodes_[i];
    List& l = lists_[n.on_keep_list ? 1 : 0];
    if (n.prev != npos) nodes_[n.prev].next = n.next; else l.head = n.next;
    if (n.next != npos) nodes_[n.next].prev = n.prev; else l.tail = n.prev;
    n.prev = n.next = npos;
    --l.count;
}

void SourceTable::push_front(uint32_t i, bool keep_list) noexcept {
    Node& n = nodes_[i];
    List& l = lists_[keep_list ? 1 : 0];
    n.on_keep_list = keep_list;
    n.prev = npos;
    n.next = l.head;
    if (l.head != npos) nodes_[l.head].prev = i; else l.tail = i;
    l.head = i;
    ++l.count;
}

void SourceTable::settle(uint32_t i) noexcept {
    const bool keep = nodes_[i].st.keep();
    if (keep == nodes_[i].on_keep_list) return;
    unlink(i);
    push_front(i, keep);
}

// Linear probing with backward-shift deletion: no tombstones, so a flood of
// insert/evict pairs cannot degrade the probe lengths over time.
void SourceTable::remove_slot(size_t s) noexcept {
    const size_t mask = slots_.size() - 1;
    size_t hole = s;
    for (size_t j = (s + 1) & mask; slots_[j].node != npos; j = (j + 1) & mask) {
        const size_t home = slots_[j].hash & mask;
        // Move j into the hole unless its home lies cyclically in (hole, j].
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            slots_[hole] = slots_[j];
            hole = j;
        }
    }
    slots_[hole] = Slot{};
}

void SourceTable::evict_one() noexcept {
    // Which list gives up its least recent entry: the plain (counting) list,
    // so reported/banned hosts are not re-reported just because a flood of
    // one-probe sources passed by — but plain entries always keep at least
    // 1/8 of the table, otherwise a table full of bans would leave a single
    // slot for counting and SCAN_TRIGGER > 1 could never fire for anyone.
    // Evicting a banned entry is safe: the kernel set still drops the host;
    // only if it is seen again (ban set full, BLOCK 2/0) is it reported again.
    const size_t reserve = std::max<size_t>(1, cap_ / 8);
    const List& plain = lists_[0];
    const List& keep = lists_[1];
    const bool from_keep = keep.count > 0 && (plain.count == 0 || plain.count < reserve);
    const uint32_t victim = from_keep ? keep.tail : plain.tail;
    if (victim == npos) return;
    remove_slot(slot_of(nodes_[victim].addr, nodes_[victim].hash));
    unlink(victim);
    nodes_[victim].next = free_;
    free_ = victim;
    --size_;
    ++evictions_;
}

void SourceTable::rehash(size_t nslots) {
    std::vector<Slot> fresh(nslots);
    const size_t mask = nslots - 1;
    for (const Slot& sl : slots_) {
        if (sl.node == npos) continue;
        size_t s = sl.hash & mask;
        while (fresh[s].node != npos) s = (s + 1) & mask;
        fresh[s] = sl;
    }
    slots_ = std::move(fresh);
}

bool SourceTable::grow() noexcept {
    try {
        if (2 * (size_ + 1) > slots_.size()) rehash(2 * slots_.size());
        if (free_ == npos && nodes_.size() == nodes_.capacity())
            nodes_.reserve(std::min(cap_, std::max(kInitialNodes, 2 * nodes_.capacity())));
        return true;
    } catch (const std::bad_alloc&) {
        return false;
    }
}

uint32_t SourceTable::acquire(const net::IpAddr& a) noexcept {
    const uint32_t h = hash_of(a);
    if (const size_t s = slot_of(a, h); s != SIZE_MAX) {
        const uint32_t i = slots_[s].node;
        unlink(i);
        push_front(i, nodes_[i].st.keep());
        return i;
    }
    if (size_ >= cap_) {
        evict_one();
    } else if (!grow()) {
        // Out of memory below the configured cap: the memory we have becomes
        // the cap (counted as evictions from here on) instead of failing.
        cap_ = std::max<size_t>(size_, 1);
        evict_one();
    }
    uint32_t i;
    if (free_ != npos) {
        i = free_;
        free_ = nodes_[i].next;
        nodes_[i] = Node{};
    } else {
        i = static_cast<uint32_t>(nodes_.size());
        nodes_.emplace_back();  // within the capacity grow() reserved: no allocation
    }
    nodes_[i].addr = a;
    nodes_[i].hash = h;
    const size_t mask = slots_.size() - 1;
    size_t s = h & mask;
    while (slots_[s].node != npos) s = (s + 1) & mask;
    slots_[s] = Slot{i, h};
    push_front(i, false);
    ++size_;
    return i;
}

bool SourceTable::erase(const net::IpAddr& a) noexcept {
    const size_t s = slot_of(a, hash_of(a));
    if (s == SIZE_MAX) return false;
    const uint32_t i = slots_[s].node;
    remove_slot(s);
    unlink(i);
    nodes_[i].next = free_;
    free_ = i;
    --size_;
    return true;
}

void SourceTable::set_capacity(size_t cap) {
    // Lowering the cap evicts at once; the slab keeps its memory (node indices
    // must stay stable), so the old high-water mark is released only on restart.
    cap_ = clamp_cap(cap);
    while (size_ > cap_) evict_one();
}

}  // namespace portsentry::engine::detail
