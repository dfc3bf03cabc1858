// A kernel::BanTable for unit tests: an interval-set model of the nft ban
// sets. Like the kernel it refuses an element that overlaps one already in
// the set (EEXIST) and an element past the set's size (ENFILE); re-adding an
// identical element is fine (its timeout is refreshed). add_bans() behaves
// as kernel::Nft::add_bans: one batch, and if the batch is refused each
// element alone, once. replace_bans() is one transaction: a missing `del`
// element throws ENOENT (as the kernel does), an overlapping or overflowing
// `add` throws, and in both cases nothing changes.
// Every kernel round trip is counted, so a test can assert what a ban cost.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/engine/policy.hpp"
#include "portsentry/kernel/nft.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::testing {

class FakeBanTable final : public kernel::BanTable {
public:
    explicit FakeBanTable(size_t capacity = 65536) : capacity(capacity) {}

    size_t capacity;  // per set, like the nft set's size bound

    // Call and round-trip counters.
    size_t add_calls = 0;         // add_bans() calls
    size_t add_batches = 0;       // kernel batches add_bans() sent (1 + N when a batch of N was refused)
    size_t add_elements = 0;      // element attempts add_bans() made (batch elements + retries)
    size_t del_calls = 0;
    size_t replace_calls = 0;
    size_t batches() const { return add_batches + del_calls + replace_calls; }
    void reset_counts() { add_calls = add_batches = add_elements = del_calls = replace_calls = 0; }

    // Non-zero: every replace_bans() call fails with this errno (a kernel hiccup).
    int fail_replace_errno = 0;
    // Non-zero: every del_bans() call fails with this errno.
    int fail_del_errno = 0;

    std::vector<kernel::BanRefusal> add_bans(const std::vector<kernel::BanElement>& bans,
                                             const kernel::BanSets& sets) override {
        ++add_calls;
        std::vector<kernel::BanRefusal> refused;
        if (bans.empty()) return refused;
        ++add_batches;
        add_elements += bans.size();
        auto scratch = sets_;
        std::optional<kernel::NftError> err;
        for (const auto& b : bans)
            if ((err = try_add(scratch, b, sets))) break;
        if (!err) {
            sets_ = std::move(scratch);
            return refused;
        }
        if (bans.size() == 1) {
            refused.push_back({bans.front().prefix, *err});
            return refused;
        }
        for (const auto& b : bans) {
            ++add_batches;
            ++add_elements;
            auto one = sets_;
            if (auto e = try_add(one, b, sets)) refused.push_back({b.prefix, *e});
            else sets_ = std::move(one);
        }
        return refused;
    }

    size_t del_bans(const std::vector<net::Cidr>& prefixes, const kernel::BanSets& sets) override {
        ++del_calls;
        if (fail_del_errno) throw kernel::NftError(fail_del_errno, "batch", "nftables: batch: injected failure");
        size_t n = 0;
        for (const auto& p : prefixes) {
            auto& v = sets_[set_of(p, sets)];
            auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.prefix == p; });
            if (it == v.end()) continue;
            v.erase(it);
            ++n;
        }
        return n;
    }

    void replace_bans(const std::vector<net::Cidr>& del, const std::vector<kernel::BanElement>& add,
                      const kernel::BanSets& sets) override {
        ++replace_calls;
        if (fail_replace_errno)
            throw kernel::NftError(fail_replace_errno, "batch", "nftables: batch: injected failure");
        auto scratch = sets_;
        for (const auto& p : del) {
            auto& v = scratch[set_of(p, sets)];
            auto it = std::find_if(v.begin(), v.end(), [&](const auto& e) { return e.prefix == p; });
            if (it == v.end())
                throw kernel::NftError(ENOENT, std::string("set ") + set_of(p, sets),
                                       "nftables: set " + set_of(p, sets) + ": No such file or directory");
            v.erase(it);
        }
        for (const auto& b : add)
            if (auto e = try_add(scratch, b, sets)) throw *e;
        sets_ = std::move(scratch);
    }

    // Test helpers.
    void put(const net::Cidr& p, const char* set) { sets_[set].push_back({p, std::nullopt}); }
    bool holds(const net::Cidr& p, const kernel::BanSets& sets = kernel::kBannedSets) const {
        auto it = sets_.find(set_of(p, sets));
        if (it == sets_.end()) return false;
        return std::any_of(it->second.begin(), it->second.end(), [&](const auto& e) { return e.prefix == p; });
    }
    const kernel::BanElement* element(const net::Cidr& p, const kernel::BanSets& sets = kernel::kBannedSets) const {
        auto it = sets_.find(set_of(p, sets));
        if (it == sets_.end()) return nullptr;
        for (const auto& e : it->second)
            if (e.prefix == p) return &e;
        return nullptr;
    }
    size_t size(const std::string& set) const {
        auto it = sets_.find(set);
        return it == sets_.end() ? 0 : it->second.size();
    }
    // "prefix[ timeout]" per element, sorted: comparable across two fakes.
    std::vector<std::string> contents(const std::string& set) const {
        std::vector<std::string> out;
        if (auto it = sets_.find(set); it != sets_.end())
            for (const auto& e : it->second)
                out.push_back(e.prefix.to_string() + (e.timeout ? " " + std::to_string(e.timeout->count()) : ""));
        std::sort(out.begin(), out.end());
        return out;
    }
    std::vector<std::string> prefixes(const std::string& set) const {
        std::vector<std::string> out;
        if (auto it = sets_.find(set); it != sets_.end())
            for (const auto& e : it->second) out.push_back(e.prefix.to_string());
        std::sort(out.begin(), out.end());
        return out;
    }

private:
    using Sets = std::map<std::string, std::vector<kernel::BanElement>>;

    static std::string set_of(const net::Cidr& p, const kernel::BanSets& sets) {
        return p.addr.is_v4() ? sets.v4 : sets.v6;
    }

    std::optional<kernel::NftError> try_add(Sets& s, const kernel::BanElement& b, const kernel::BanSets& sets) const {
        const std::string name = set_of(b.prefix, sets);
        auto& v = s[name];
        for (auto& e : v) {
            if (e.prefix == b.prefix) {  // re-adding: not an error, timeout refreshed
                e.timeout = b.timeout;
                return std::nullopt;
            }
            if (engine::overlaps(e.prefix, b.prefix))
                return kernel::NftError(EEXIST, "set " + name,
                                        "nftables: set " + name + ": File exists; overlaps an element already in "
                                        "the set (a host inside a banned prefix?)");
        }
        if (v.size() >= capacity)
            return kernel::NftError(ENFILE, "set " + name,
                                    "nftables: set " + name + ": Too many open files in system; the set is full "
                                    "(its size bound): raise ban_set_size");
        v.push_back(b);
        return std::nullopt;
    }

    Sets sets_;
};

}  // namespace portsentry::testing
