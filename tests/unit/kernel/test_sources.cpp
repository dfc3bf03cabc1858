// Packet sources: NFQUEUE / NFLOG wire helpers (no socket, no root), the pcap
// replay source, and — as root, inside a fresh network namespace made by the
// test itself — real packets through an xt NFQUEUE rule and an nft
// `log group` rule.
#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "portsentry/kernel/nflog.hpp"
#include "portsentry/kernel/nfqueue.hpp"
#include "portsentry/kernel/replay.hpp"

namespace ps = portsentry::kernel;
using ps::PacketVerdict;
using Bytes = std::vector<uint8_t>;

namespace {

// ---------------------------------------------------------------- packets

uint16_t csum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}
uint32_t csum_add(uint32_t sum, const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    return sum;
}

// IPv4 + TCP SYN, 40 bytes, checksums valid (so an ACCEPTed SYN really
// reaches TCP and earns a RST).
Bytes syn_v4(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
    Bytes p(40, 0);
    p[0] = 0x45;                  // version 4, IHL 5 (20 bytes)
    p[3] = 40;                    // total length
    p[8] = 64;                    // TTL
    p[9] = IPPROTO_TCP;
    inet_pton(AF_INET, src, &p[12]);
    inet_pton(AF_INET, dst, &p[16]);
    uint16_t ipsum = csum_fold(csum_add(0, p.data(), 20));
    p[10] = ipsum >> 8;
    p[11] = ipsum & 0xff;
    uint8_t* t = &p[20];
    t[0] = sport >> 8; t[1] = sport & 0xff;   // source port
    t[2] = dport >> 8; t[3] = dport & 0xff;   // destination port
    t[7] = 1;                                 // sequence number 1
    t[12] = 5 << 4;                           // data offset 5 (20 bytes)
    t[13] = 0x02;                             // SYN
    t[14] = 0xff; t[15] = 0xff;               // window
    uint32_t sum = csum_add(0, &p[12], 8);    // pseudo header: addresses,
    sum += IPPROTO_TCP + 20;                  // protocol, TCP length
    uint16_t tsum = csum_fold(csum_add(sum, t, 20));
    t[16] = tsum >> 8;
    t[17] = tsum & 0xff;
    return p;
}

// Destination port of an IPv4/IPv6 TCP or UDP packet without extension
// headers; nullopt for anything else. Deliberately independent of net::.
std::optional<uint16_t> dport_of(std::span<const uint8_t> l3) {
    if (l3.empty()) return std::nullopt;
    size_t off;
    uint8_t proto;
    if ((l3[0] >> 4) == 4) {
        off = (l3[0] & 0x0f) * 4u;
        if (l3.size() < 20) return std::nullopt;
        proto = l3[9];
    } else if ((l3[0] >> 4) == 6) {
        off = 40;
        if (l3.size() < 40) return std::nullopt;
        proto = l3[6];
    } else {
        return std::nullopt;
    }
    if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || l3.size() < off + 4) return std::nullopt;
    return static_cast<uint16_t>(l3[off + 2] << 8 | l3[off + 3]);
}

// ---------------------------------------------------------------- netlink fakes

// Append a message shaped like the kernel's NFQNL_MSG_PACKET to `buf`.
void put_queue_packet(Bytes& buf, uint16_t queue, std::optional<uint32_t> id,
                      std::optional<Bytes> payload) {
    std::vector<uint8_t> tmp(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nfq_nlmsg_put(reinterpret_cast<char*>(tmp.data()), NFQNL_MSG_PACKET, queue);
    if (id) {
        nfqnl_msg_packet_hdr ph{};
        ph.packet_id = htonl(*id);
        ph.hw_protocol = htons(0x0800);
        ph.hook = NF_INET_LOCAL_IN;
        mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof ph, &ph);
    }
    mnl_attr_put_u32(nlh, NFQA_IFINDEX_INDEV, htonl(1));
    if (payload) mnl_attr_put(nlh, NFQA_PAYLOAD, payload->size(), payload->data());
    buf.insert(buf.end(), tmp.data(), tmp.data() + nlh->nlmsg_len);
}

void put_log_packet(Bytes& buf, uint16_t group, uint32_t seq, const Bytes& payload) {
    std::vector<uint8_t> tmp(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = mnl_nlmsg_put_header(tmp.data());
    nlh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = AF_INET;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = htons(group);
    nfulnl_msg_packet_hdr ph{};
    ph.hw_protocol = htons(0x0800);
    mnl_attr_put(nlh, NFULA_PACKET_HDR, sizeof ph, &ph);
    mnl_attr_put_u32(nlh, NFULA_SEQ, htonl(seq));
    mnl_attr_put(nlh, NFULA_PAYLOAD, payload.size(), payload.data());
    buf.insert(buf.end(), tmp.data(), tmp.data() + nlh->nlmsg_len);
}

struct SentVerdict {
    uint16_t type;  // NFQNL_MSG_VERDICT or NFQNL_MSG_VERDICT_BATCH
    uint16_t queue;
    uint32_t id;
    int verdict;    // NF_ACCEPT / NF_DROP
    bool operator==(const SentVerdict&) const = default;
};
std::ostream& operator<<(std::ostream& o, const SentVerdict& v) {
    return o << (v.type == NFQNL_MSG_VERDICT_BATCH ? "BATCH" : "VERDICT") << " q" << v.queue
             << " id " << v.id << (v.verdict == NF_DROP ? " DROP" : " ACCEPT");
}

std::vector<SentVerdict> decode_verdicts(std::span<const uint8_t> buf) {
    std::vector<SentVerdict> out;
    int len = static_cast<int>(buf.size());
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, len);
         m = mnl_nlmsg_next(m, &len)) {
        EXPECT_EQ(m->nlmsg_type >> 8, NFNL_SUBSYS_QUEUE);
        auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(m));
        nlattr* attr[NFQA_MAX + 1] = {};
        EXPECT_GE(nfq_nlmsg_parse(m, attr), 0);
        if (!attr[NFQA_VERDICT_HDR]) {
            ADD_FAILURE() << "verdict message without NFQA_VERDICT_HDR";
            continue;
        }
        auto* vh = static_cast<const nfqnl_msg_verdict_hdr*>(mnl_attr_get_payload(attr[NFQA_VERDICT_HDR]));
        out.push_back({static_cast<uint16_t>(m->nlmsg_type & 0xff), ntohs(nfg->res_id),
                       ntohl(vh->id), static_cast<int>(ntohl(vh->verdict))});
    }
    EXPECT_EQ(len, 0) << "trailing bytes after the last verdict message";
    return out;
}

std::vector<SentVerdict> build(uint16_t q, const std::vector<ps::nfqwire::PendingVerdict>& v) {
    Bytes buf(v.size() * ps::nfqwire::verdict_msg_size());
    size_t n = ps::nfqwire::build_verdicts(q, v, buf);
    EXPECT_GT(n, 0u);
    return decode_verdicts({buf.data(), n});
}

constexpr auto D = PacketVerdict::drop;
constexpr auto A = PacketVerdict::accept;

// ================================================================ NFQUEUE wire

TEST(NfqWireBuildVerdicts, ContiguousEqualRunBecomesOneBatch) {
    auto got = build(3, {{10, D}, {11, D}, {12, D}});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], (SentVerdict{NFQNL_MSG_VERDICT_BATCH, 3, 12, NF_DROP}));
}

TEST(NfqWireBuildVerdicts, MixedVerdictsAndGapsSplitIntoRunsInOrder) {
    // 10 D | 11 A, 12 A (run) | 14 A (gap after 12: alone) | 15 D
    auto got = build(0, {{10, D}, {11, A}, {12, A}, {14, A}, {15, D}});
    std::vector<SentVerdict> want = {
        {NFQNL_MSG_VERDICT, 0, 10, NF_DROP},
        {NFQNL_MSG_VERDICT_BATCH, 0, 12, NF_ACCEPT},
        {NFQNL_MSG_VERDICT, 0, 14, NF_ACCEPT},
        {NFQNL_MSG_VERDICT, 0, 15, NF_DROP},
    };
    EXPECT_EQ(got, want);
}

TEST(NfqWireBuildVerdicts, SingleVerdictIsNotABatch) {
    auto got = build(65535, {{0xffffffffu, A}});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], (SentVerdict{NFQNL_MSG_VERDICT, 65535, 0xffffffffu, NF_ACCEPT}));
}

TEST(NfqWireBuildVerdicts, RefusesABufferTooSmallForTheWorstCase) {
    std::vector<ps::nfqwire::PendingVerdict> v = {{1, D}, {2, A}};
    Bytes buf(2 * ps::nfqwire::verdict_msg_size() - 1);
    EXPECT_EQ(ps::nfqwire::build_verdicts(0, v, buf), 0u);
    EXPECT_EQ(ps::nfqwire::build_verdicts(0, {}, buf), 0u);
}

struct DispatchFixture : ::testing::Test {
    std::vector<ps::nfqwire::PendingVerdict> pending;
    ps::SourceCounters c;
    ps::nfqwire::DispatchState st{&pending, &c, PacketVerdict::accept, std::nullopt};
    const Bytes syn = syn_v4("198.51.100.2", "192.0.2.1", 40000, 9);
};

TEST_F(DispatchFixture, HandlerSeesThePayloadAndItsVerdictIsQueued) {
    Bytes dg;
    put_queue_packet(dg, 0, 7, syn);
    Bytes seen;
    size_t n = ps::nfqwire::dispatch(dg, false, [&](std::span<const uint8_t> l3) {
        seen.assign(l3.begin(), l3.end());
        return D;
    }, st);
    EXPECT_EQ(n, 1u);
    EXPECT_EQ(seen, syn);
    EXPECT_EQ(dport_of(seen), 9);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].id, 7u);
    EXPECT_EQ(pending[0].verdict, D);
    EXPECT_EQ(c.received, 1u);
    EXPECT_EQ(c.default_verdicts, 0u);
}

TEST_F(DispatchFixture, ThrowingHandlerGetsTheDefaultVerdictCounted) {
    Bytes dg;
    put_queue_packet(dg, 0, 8, syn);
    ps::nfqwire::dispatch(dg, false, [](std::span<const uint8_t>) -> PacketVerdict {
        throw std::runtime_error("engine bug");
    }, st);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].id, 8u);
    EXPECT_EQ(pending[0].verdict, A);
    EXPECT_EQ(c.default_verdicts, 1u);
    EXPECT_EQ(c.handler_errors, 1u);
}

TEST_F(DispatchFixture, DefaultVerdictFollowsTheConfiguredDefault) {
    st.default_verdict = D;
    Bytes dg;
    put_queue_packet(dg, 0, 8, syn);
    ps::nfqwire::dispatch(dg, false, [](std::span<const uint8_t>) -> PacketVerdict { throw 1; }, st);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].verdict, D);
}

TEST_F(DispatchFixture, MissingPayloadStillGetsAVerdictWithoutCallingTheHandler) {
    Bytes dg;
    put_queue_packet(dg, 0, 9, std::nullopt);
    bool called = false;
    ps::nfqwire::dispatch(dg, false, [&](std::span<const uint8_t>) { called = true; return D; }, st);
    EXPECT_FALSE(called);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].id, 9u);
    EXPECT_EQ(pending[0].verdict, A);
    EXPECT_EQ(c.parse_errors, 1u);
    EXPECT_EQ(c.default_verdicts, 1u);
}

TEST_F(DispatchFixture, MessageWithoutPacketIdIsCountedAsUnverdictable) {
    Bytes dg;
    put_queue_packet(dg, 0, std::nullopt, syn);
    ps::nfqwire::dispatch(dg, false, [](std::span<const uint8_t>) { return D; }, st);
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(c.unverdictable, 1u);
    EXPECT_EQ(c.parse_errors, 1u);
}

TEST_F(DispatchFixture, TruncatedDatagramStillYieldsTheDefaultVerdictForItsId) {
    Bytes dg;
    put_queue_packet(dg, 0, 42, syn);
    dg.resize(40);  // cut inside the payload: nlmsg_len no longer fits
    bool called = false;
    ps::nfqwire::dispatch(dg, true, [&](std::span<const uint8_t>) { called = true; return D; }, st);
    EXPECT_FALSE(called);
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].id, 42u);
    EXPECT_EQ(pending[0].verdict, A);
    EXPECT_EQ(c.default_verdicts, 1u);
}

TEST_F(DispatchFixture, EveryMessageInADatagramIsHandledAndIdGapsCountAsOverruns) {
    Bytes dg;
    put_queue_packet(dg, 0, 1, syn);
    put_queue_packet(dg, 0, 2, syn);
    put_queue_packet(dg, 0, 5, syn);  // 3 and 4 never reached us
    size_t n = ps::nfqwire::dispatch(dg, false, [](std::span<const uint8_t>) { return D; }, st);
    EXPECT_EQ(n, 3u);
    EXPECT_EQ(pending.size(), 3u);
    EXPECT_EQ(c.enobufs, 2u);
    // Wrap-around is the next id, not a gap of four billion.
    Bytes wrap;
    st.last_id = 0xffffffffu;
    put_queue_packet(wrap, 0, 0, syn);
    ps::nfqwire::dispatch(wrap, false, [](std::span<const uint8_t>) { return D; }, st);
    EXPECT_EQ(c.enobufs, 2u);
}

TEST_F(DispatchFixture, KernelErrorReplyCountsAsSendError) {
    Bytes dg(MNL_NLMSG_HDRLEN + sizeof(nlmsgerr), 0);
    nlmsghdr* nlh = mnl_nlmsg_put_header(dg.data());
    nlh->nlmsg_type = NLMSG_ERROR;
    auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
    e->error = -ENOENT;  // verdict for an id that is no longer queued
    ps::nfqwire::dispatch(dg, false, [](std::span<const uint8_t>) { return D; }, st);
    EXPECT_EQ(c.send_errors, 1u);
    EXPECT_TRUE(pending.empty());
}

// ================================================================ NFLOG wire

TEST(NfLogWire, EveryMessageReachesTheHandlerAndSequenceGapsCount) {
    Bytes dg;
    put_log_packet(dg, 5, 0, syn_v4("198.51.100.2", "192.0.2.1", 40000, 9));
    put_log_packet(dg, 5, 1, syn_v4("198.51.100.2", "192.0.2.1", 40000, 10));
    put_log_packet(dg, 5, 4, syn_v4("198.51.100.2", "192.0.2.1", 40000, 11));  // 2, 3 lost
    ps::SourceCounters c;
    ps::nflogwire::DispatchState st{&c, std::nullopt};
    std::vector<uint16_t> ports;
    size_t n = ps::nflogwire::dispatch(dg, [&](std::span<const uint8_t> l3) {
        ports.push_back(dport_of(l3).value_or(0));
        if (ports.size() == 2) throw std::runtime_error("observer failed");
        return A;
    }, st);
    EXPECT_EQ(n, 3u);
    EXPECT_EQ(ports, (std::vector<uint16_t>{9, 10, 11}));
    EXPECT_EQ(c.received, 3u);
    EXPECT_EQ(c.enobufs, 2u);
    EXPECT_EQ(c.handler_errors, 1u);
    EXPECT_EQ(c.verdicts, 0u);  // observe only
}

// ================================================================ replay

std::filesystem::path data_dir() {
#if defined(PS_TEST_DATA_DIR)
    return PS_TEST_DATA_DIR;
#elif defined(PS_SOURCE_ROOT)
    return std::filesystem::path(PS_SOURCE_ROOT) / "tests" / "data";
#else
    // Build directories live inside the source tree (build-*/tests/unit/...):
    // walk up from the test binary to the tree that has tests/data.
    auto p = std::filesystem::read_symlink("/proc/self/exe").parent_path();
    for (; !p.empty() && p != p.root_path(); p = p.parent_path())
        if (std::filesystem::exists(p / "tests/data/pcap/probes-raw.pcap")) return p / "tests/data";
    throw std::runtime_error("tests/data not found above the test binary; define PS_TEST_DATA_DIR");
#endif
}

TEST(ReplaySource, RawPcapFromTheTreeReplaysEveryPacketWithItsTimestamp) {
    auto src = ps::ReplaySource::from_pcap((data_dir() / "pcap/probes-raw.pcap").string());
    ASSERT_EQ(src.pending(), 3u);
    std::vector<uint16_t> ports;
    std::vector<int64_t> ts;
    size_t n = src.process([&](std::span<const uint8_t> l3) {
        ports.push_back(dport_of(l3).value_or(0));
        ts.push_back(src.current_timestamp().count());
        return ports.size() == 2 ? A : D;
    });
    EXPECT_EQ(n, 3u);
    // SYN 198.51.100.2 → 192.0.2.1:9, FIN → :22, IPv6 UDP 2001:db8::2 → [2001:db8::1]:53
    EXPECT_EQ(ports, (std::vector<uint16_t>{9, 22, 53}));
    EXPECT_EQ(ts, (std::vector<int64_t>{1700000000000000, 1700000001000000, 1700000002000000}));
    EXPECT_EQ(src.verdicts(), (std::vector<PacketVerdict>{D, A, D}));
    EXPECT_EQ(src.counters().verdicts, 3u);
    EXPECT_EQ(src.pending(), 0u);
}

TEST(ReplaySource, EthernetPcapStripsLinkHeadersIncludingVlanAndSkipsNonIp) {
    auto src = ps::ReplaySource::from_pcap((data_dir() / "pcap/probes-en10mb.pcap").string());
    EXPECT_EQ(src.counters().parse_errors, 1u);  // the ARP frame
    std::vector<uint16_t> ports;
    src.process([&](std::span<const uint8_t> l3) {
        ports.push_back(dport_of(l3).value_or(0));
        return D;
    });
    // 203.0.113.7 → 192.0.2.1:111 (untagged), 2001:db8::7 → :143 (802.1Q VLAN 10)
    EXPECT_EQ(ports, (std::vector<uint16_t>{111, 143}));
}

TEST(ReplaySource, ThrowingHandlerGetsTheDefaultVerdictCounted) {
    ps::ReplaySource src({{{}, syn_v4("198.51.100.2", "192.0.2.1", 1, 9)},
                          {{}, syn_v4("198.51.100.2", "192.0.2.1", 2, 9)}},
                         PacketVerdict::accept);
    int calls = 0;
    src.process([&](std::span<const uint8_t>) -> PacketVerdict {
        if (++calls == 1) throw std::runtime_error("boom");
        return D;
    });
    EXPECT_EQ(src.verdicts(), (std::vector<PacketVerdict>{A, D}));
    EXPECT_EQ(src.counters().default_verdicts, 1u);
    EXPECT_EQ(src.counters().handler_errors, 1u);
}

TEST(ReplaySource, FdIsReadableExactlyWhilePacketsWait) {
    ps::ReplaySource src({});
    auto readable = [&] {
        pollfd p{src.fd(), POLLIN, 0};
        return poll(&p, 1, 0) == 1;
    };
    EXPECT_FALSE(readable());
    src.push({{}, syn_v4("198.51.100.2", "192.0.2.1", 1, 9)});
    EXPECT_TRUE(readable());
    EXPECT_EQ(src.process([](std::span<const uint8_t>) { return D; }), 1u);
    EXPECT_FALSE(readable());
}

Bytes pcap_header(uint32_t magic, uint32_t linktype) {
    Bytes b(24, 0);
    std::memcpy(&b[0], &magic, 4);
    uint16_t major = 2, minor = 4;
    std::memcpy(&b[4], &major, 2);
    std::memcpy(&b[6], &minor, 2);
    uint32_t snap = 65535;
    std::memcpy(&b[16], &snap, 4);
    std::memcpy(&b[20], &linktype, 4);
    return b;
}
void pcap_record(Bytes& b, uint32_t sec, uint32_t frac, const Bytes& data, uint32_t incl) {
    uint32_t h[4] = {sec, frac, incl, static_cast<uint32_t>(data.size())};
    b.insert(b.end(), reinterpret_cast<uint8_t*>(h), reinterpret_cast<uint8_t*>(h) + 16);
    b.insert(b.end(), data.begin(), data.end());
}

std::string parse_error(const Bytes& b) {
    try {
        ps::parse_pcap(b, "x.pcap");
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

TEST(ParsePcap, NanosecondMagicAndLinuxCookedCapture) {
    // LINUX_SLL (113): 16-byte cooked header, protocol 0x0800 at offset 14.
    Bytes frame(16, 0);
    frame[14] = 0x08;
    Bytes ip = syn_v4("203.0.113.9", "192.0.2.1", 5, 25);
    frame.insert(frame.end(), ip.begin(), ip.end());
    Bytes b = pcap_header(0xa1b23c4d, 113);
    pcap_record(b, 10, 999'999'999, frame, static_cast<uint32_t>(frame.size()));
    auto pkts = ps::parse_pcap(b, "sll.pcap");
    ASSERT_EQ(pkts.size(), 1u);
    EXPECT_EQ(pkts[0].l3, ip);
    EXPECT_EQ(pkts[0].ts.count(), 10'999'999);
}

TEST(ParsePcap, MalformedFilesAreRejectedWithTheOffset) {
    Bytes ip = syn_v4("203.0.113.9", "192.0.2.1", 5, 25);
    Bytes ok = pcap_header(0xa1b2c3d4, 101);

    EXPECT_EQ(parse_error(Bytes(10, 0)), "x.pcap: offset 0: shorter than a pcap file header (24 bytes)");
    EXPECT_NE(parse_error(pcap_header(0x0a0d0d0a, 1)).find("pcapng is not supported"), std::string::npos);
    EXPECT_EQ(parse_error(pcap_header(0x12345678, 1)), "x.pcap: offset 0: not a pcap file (magic 0x12345678)");
    EXPECT_EQ(parse_error(pcap_header(0xa1b2c3d4, 105)), "x.pcap: offset 20: unsupported link type 105");

    Bytes past = ok;
    pcap_record(past, 0, 0, ip, 41);  // claims one byte more than the file has
    EXPECT_EQ(parse_error(past), "x.pcap: offset 24: record of 41 bytes runs past the end of the file");

    Bytes huge = ok;
    pcap_record(huge, 0, 0, ip, 0x7fffffff);
    EXPECT_EQ(parse_error(huge), "x.pcap: offset 32: record length 2147483647 exceeds 262144");

    Bytes cut = ok;
    pcap_record(cut, 0, 0, ip, 40);
    cut.resize(cut.size() + 5, 0);  // half a record header
    EXPECT_EQ(parse_error(cut), "x.pcap: offset 80: truncated record header");
}

TEST(ParsePcap, ByteSwappedFileReadsTheSame) {
    Bytes ip = syn_v4("203.0.113.9", "192.0.2.1", 5, 25);
    Bytes b = pcap_header(0xd4c3b2a1, __builtin_bswap32(101));
    uint16_t major = __builtin_bswap16(2);
    std::memcpy(&b[4], &major, 2);
    uint32_t h[4] = {__builtin_bswap32(3), __builtin_bswap32(4), __builtin_bswap32(40),
                     __builtin_bswap32(40)};
    b.insert(b.end(), reinterpret_cast<uint8_t*>(h), reinterpret_cast<uint8_t*>(h) + 16);
    b.insert(b.end(), ip.begin(), ip.end());
    auto pkts = ps::parse_pcap(b, "be.pcap");
    ASSERT_EQ(pkts.size(), 1u);
    EXPECT_EQ(pkts[0].l3, ip);
    EXPECT_EQ(pkts[0].ts.count(), 3'000'004);
}

// ================================================================ root: real kernel

struct Cmd {
    int status;
    std::string output;
};

// fork + exec (no shell), stdin from `input`, stdout+stderr captured.
Cmd run(const std::vector<std::string>& argv, const std::string& input = {}) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) return {-1, "pipe failed"};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(out[1], 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    (void)!write(in[1], input.data(), input.size());
    close(in[1]);
    std::string output;
    char buf[4096];
    ssize_t n;
    while ((n = read(out[0], buf, sizeof buf)) > 0) output.append(buf, static_cast<size_t>(n));
    close(out[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, output};
}

// A missing tool (exec failed) or a kernel without the module is a reason to
// skip; anything else (a syntax error in the test) is a failure.
bool kernel_lacks_it(const Cmd& r) {
    return r.status == 127 || r.output.find("not supported") != std::string::npos ||
           r.output.find("No such file or directory") != std::string::npos ||
           r.output.find("Protocol not available") != std::string::npos;
}

// The whole test process moves into a new, anonymous network namespace and
// back afterwards: nothing touches the root namespace's firewall, and the
// namespace (rules, queue bindings) disappears with its last socket, even if
// the test crashes. Commands forked meanwhile inherit it.
class NetnsTest : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_NET_ADMIN) for a network namespace";
        orig_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(orig_, 0) << strerror(errno);
        if (unshare(CLONE_NEWNET) < 0) GTEST_SKIP() << "unshare(CLONE_NEWNET): " << strerror(errno);
        entered_ = true;
        // lo starts down in a new namespace.
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
        ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &ifr), 0) << strerror(errno);
        ifr.ifr_flags |= IFF_UP;
        ASSERT_EQ(ioctl(s, SIOCSIFFLAGS, &ifr), 0) << strerror(errno);
        close(s);
        std::mt19937 rng(std::random_device{}());
        queue_ = static_cast<uint16_t>(1000 + rng() % 30000);
    }
    void TearDown() override {
        if (entered_) {
            EXPECT_EQ(setns(orig_, CLONE_NEWNET), 0) << strerror(errno);
        }
        if (orig_ >= 0) close(orig_);
    }

    // xt NFQUEUE through iptables-nft (this kernel has no nft `queue`).
    bool steer_to_queue(uint16_t dport) {
        Cmd r = run({"iptables-nft", "-w", "-A", "INPUT", "-p", "tcp", "--dport", std::to_string(dport),
                     "-j", "NFQUEUE", "--queue-num", std::to_string(queue_), "--queue-bypass"});
        if (r.status == 0) return true;
        if (!kernel_lacks_it(r)) ADD_FAILURE() << "iptables-nft failed: " << r.output;
        skip_reason_ = "iptables-nft NFQUEUE rule refused: " + r.output;
        return false;
    }

    int orig_ = -1;
    bool entered_ = false;
    uint16_t queue_ = 0;
    std::string skip_reason_;
};

// Non-blocking connect to 127.0.0.1:port; the SYN leaves during the call.
int start_connect(uint16_t port) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
    EXPECT_TRUE(rc < 0 && errno == EINPROGRESS) << strerror(errno);
    return s;
}

// 0 = still in progress after `ms`, else the connect's final errno.
int connect_outcome(int s, int ms) {
    pollfd p{s, POLLOUT, 0};
    if (poll(&p, 1, ms) == 0) return 0;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
    return err;
}

// Poll the source until `done()` or the deadline.
template <class Done>
void pump(ps::PacketSource& src, const ps::PacketHandler& h, Done done, int ms = 3000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done() && std::chrono::steady_clock::now() < end) {
        pollfd p{src.fd(), POLLIN, 0};
        if (poll(&p, 1, 50) > 0) src.process(h);
    }
}

TEST_F(NetnsTest, NfQueueDeliversTheSynAndDropVerdictSilencesThePort) {
    ps::NfQueue q(queue_);
    if (!steer_to_queue(9)) GTEST_SKIP() << skip_reason_;
    EXPECT_TRUE(q.fail_open_active()) << q.describe();
    EXPECT_NE(q.describe().find("nfqueue " + std::to_string(queue_)), std::string::npos);

    int s = start_connect(9);
    std::vector<Bytes> seen;
    pump(q, [&](std::span<const uint8_t> l3) {
        seen.emplace_back(l3.begin(), l3.end());
        return PacketVerdict::drop;
    }, [&] { return !seen.empty(); });
    ASSERT_EQ(seen.size(), 1u);
    const Bytes& p = seen[0];
    ASSERT_GE(p.size(), 40u);
    EXPECT_EQ(p[0] >> 4, 4);
    EXPECT_EQ(p[9], IPPROTO_TCP);
    EXPECT_EQ(dport_of(p), 9);
    EXPECT_EQ(p[20 + 13] & 0x3f, 0x02) << "expected a bare SYN";
    EXPECT_EQ(p[16], 127);  // daddr 127.0.0.1
    // Dropped: no RST comes back; the SYN retransmits only after ~1 s.
    EXPECT_EQ(connect_outcome(s, 400), 0) << "connect finished although the SYN was dropped";
    close(s);
    EXPECT_EQ(q.counters().verdicts, 1u);
    EXPECT_EQ(q.counters().default_verdicts, 0u);
    auto ks = q.kernel_stats();
    ASSERT_TRUE(ks.has_value());
    EXPECT_EQ(ks->copy_range, 128u);
    EXPECT_EQ(ks->queue_total, 0u) << "a packet is still waiting for a verdict";
}

TEST_F(NetnsTest, NfQueueAcceptVerdictLetsTheStackAnswerWithRst) {
    ps::NfQueue q(queue_);
    if (!steer_to_queue(9)) GTEST_SKIP() << skip_reason_;
    int s = start_connect(9);
    pump(q, [](std::span<const uint8_t>) { return PacketVerdict::accept; },
         [&] { return q.counters().verdicts >= 1; });
    EXPECT_EQ(connect_outcome(s, 2000), ECONNREFUSED);
    close(s);
    EXPECT_EQ(q.counters().verdicts, 1u);
}

TEST_F(NetnsTest, NfQueueThrowingHandlerStillReleasesThePacketFailOpen) {
    ps::NfQueue q(queue_);
    if (!steer_to_queue(9)) GTEST_SKIP() << skip_reason_;
    int s = start_connect(9);
    pump(q, [](std::span<const uint8_t>) -> PacketVerdict { throw std::runtime_error("bug"); },
         [&] { return q.counters().verdicts >= 1; });
    EXPECT_EQ(connect_outcome(s, 2000), ECONNREFUSED) << "default verdict must be ACCEPT";
    close(s);
    EXPECT_EQ(q.counters().default_verdicts, 1u);
    EXPECT_EQ(q.counters().handler_errors, 1u);
}

// Raw IPv4 socket: the SYNs go out through lo with our own headers.
void send_syns(int count, uint16_t dport) {
    int s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    ASSERT_GE(s, 0) << strerror(errno);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; ++i) {
        Bytes p = syn_v4("127.0.0.1", "127.0.0.1", static_cast<uint16_t>(20000 + i), dport);
        ASSERT_EQ(sendto(s, p.data(), p.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
                  static_cast<ssize_t>(p.size()))
            << strerror(errno);
    }
    close(s);
}

TEST_F(NetnsTest, NfQueueThousandPacketsGetAThousandVerdicts) {
    ps::NfQueue q(queue_);
    if (!steer_to_queue(9)) GTEST_SKIP() << skip_reason_;
    send_syns(1000, 9);
    std::vector<uint16_t> sports;
    pump(q, [&](std::span<const uint8_t> l3) {
        sports.push_back(static_cast<uint16_t>(l3[20] << 8 | l3[21]));
        return sports.size() % 3 == 0 ? PacketVerdict::accept : PacketVerdict::drop;
    }, [&] { return q.counters().verdicts >= 1000; }, 5000);
    EXPECT_EQ(q.counters().received, 1000u);
    EXPECT_EQ(q.counters().verdicts, 1000u);
    EXPECT_EQ(q.counters().enobufs, 0u);
    EXPECT_EQ(q.counters().send_errors, 0u);
    ASSERT_EQ(sports.size(), 1000u);
    for (size_t i = 0; i < sports.size(); ++i) ASSERT_EQ(sports[i], 20000 + i) << "order at " << i;
    // Any NLMSG_ERROR for a rejected verdict would surface on the next read.
    q.process([](std::span<const uint8_t>) { return PacketVerdict::drop; });
    EXPECT_EQ(q.counters().send_errors, 0u);
    auto ks = q.kernel_stats();
    ASSERT_TRUE(ks.has_value());
    EXPECT_EQ(ks->queue_total, 0u);
}

TEST_F(NetnsTest, NfQueueSecondReaderOnTheSameQueueIsRefusedWithAHint) {
    ps::NfQueue q(queue_);
    try {
        ps::NfQueue second(queue_);
        FAIL() << "binding a bound queue succeeded";
    } catch (const std::system_error& e) {
        EXPECT_EQ(e.code().value(), EPERM);  // nfnetlink_queue: portid mismatch
        EXPECT_NE(std::string(e.what()).find("already bound"), std::string::npos) << e.what();
    }
}

TEST_F(NetnsTest, NfLogReceivesTheProbe) {
    uint16_t group = static_cast<uint16_t>(queue_ % 60000 + 1);
    ps::NfLog log(group);
    EXPECT_FALSE(log.inline_verdict());
    Cmd r = run({"nft", "-f", "-"},
                "table inet pstest {\n"
                "  chain input {\n"
                "    type filter hook input priority 0;\n"
                "    tcp dport 9 log group " + std::to_string(group) + "\n"
                "  }\n"
                "}\n");
    if (r.status != 0 && kernel_lacks_it(r)) GTEST_SKIP() << "nft log group refused: " << r.output;
    ASSERT_EQ(r.status, 0) << r.output;
    int s = start_connect(9);
    std::vector<Bytes> seen;
    pump(log, [&](std::span<const uint8_t> l3) {
        seen.emplace_back(l3.begin(), l3.end());
        return PacketVerdict::drop;  // ignored: NFLOG observes only
    }, [&] { return !seen.empty(); });
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(dport_of(seen[0]), 9);
    EXPECT_LE(seen[0].size(), 128u);
    // The rule did not drop and our return value cannot: the stack answered.
    EXPECT_EQ(connect_outcome(s, 2000), ECONNREFUSED);
    close(s);
    EXPECT_EQ(log.counters().received, 1u);
    EXPECT_EQ(log.counters().enobufs, 0u);
}

}  // namespace
