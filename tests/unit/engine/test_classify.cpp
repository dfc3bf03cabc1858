// engine::classify and engine::scan_name: one row per TCP flag combination.
#include <gtest/gtest.h>

#include "portsentry/engine/engine.hpp"

namespace portsentry::engine {
namespace {

using namespace net::tcpflag;

net::Packet tcp(uint8_t flags) {
    net::Packet p;
    p.proto = net::L4::tcp;
    p.tcp_flags = flags;
    return p;
}

struct Row {
    uint8_t flags;
    ScanType type;
    const char* what;
};

class ClassifyTable : public ::testing::TestWithParam<Row> {};

TEST_P(ClassifyTable, FlagsGiveScanType) {
    const Row& r = GetParam();
    EXPECT_EQ(classify(tcp(r.flags)), r.type) << r.what;
}

INSTANTIATE_TEST_SUITE_P(
    Flags, ClassifyTable,
    ::testing::Values(
        Row{SYN, ScanType::tcp_syn, "nmap -sS / connect SYN"},
        Row{SYN | ECE | CWR, ScanType::tcp_syn, "ECN-setup SYN is still a SYN"},
        Row{SYN | ECE, ScanType::tcp_syn, "SYN|ECE"},
        Row{0, ScanType::tcp_null, "nmap -sN"},
        Row{CWR, ScanType::tcp_null, "only ECN bits: NULL"},
        Row{FIN, ScanType::tcp_fin, "nmap -sF"},
        Row{FIN | PSH | URG, ScanType::tcp_xmas, "nmap -sX"},
        Row{FIN | PSH | URG | ECE, ScanType::tcp_xmas, "XMAS with ECE"},
        Row{ACK, ScanType::tcp_ack, "nmap -sA and -sW"},
        Row{FIN | ACK, ScanType::tcp_maimon, "nmap -sM"},
        Row{SYN | ACK, ScanType::tcp_other, "SYN|ACK"},
        Row{RST, ScanType::tcp_other, "RST"},
        Row{ACK | RST, ScanType::tcp_other, "ACK|RST"},
        Row{SYN | FIN, ScanType::tcp_other, "SYN|FIN"},
        Row{FIN | PSH, ScanType::tcp_other, "FIN|PSH (XMAS without URG)"},
        Row{FIN | URG, ScanType::tcp_other, "FIN|URG"},
        Row{ACK | PSH, ScanType::tcp_other, "ACK|PSH"},
        Row{FIN | SYN | RST | PSH | ACK | URG, ScanType::tcp_other, "all six"},
        Row{FIN | PSH | URG | ACK, ScanType::tcp_other, "XMAS plus ACK"}));

TEST(Classify, UdpIsUdpScanWhateverTheFlagsField) {
    net::Packet p;
    p.proto = net::L4::udp;
    p.tcp_flags = SYN;  // meaningless for UDP; must not leak into the type
    EXPECT_EQ(classify(p), ScanType::udp);
}

TEST(ScanName, OnePointTwoWording) {
    EXPECT_EQ(scan_name(ScanType::tcp_syn, SYN), "TCP SYN/Normal scan");
    EXPECT_EQ(scan_name(ScanType::tcp_fin, FIN), "TCP FIN scan");
    EXPECT_EQ(scan_name(ScanType::tcp_null, 0), "TCP NULL scan");
    EXPECT_EQ(scan_name(ScanType::tcp_xmas, FIN | PSH | URG), "TCP XMAS scan");
    EXPECT_EQ(scan_name(ScanType::tcp_ack, ACK), "TCP ACK/Window scan");
    EXPECT_EQ(scan_name(ScanType::tcp_maimon, FIN | ACK), "TCP Maimon scan");
    EXPECT_EQ(scan_name(ScanType::udp, 0), "UDP scan");
    EXPECT_EQ(scan_name(ScanType::udp_tripwire, 0), "UDP scan");
    EXPECT_EQ(scan_name(ScanType::tcp_connect, 0), "Connect");
}

TEST(ScanName, UnknownFlagsListEachFlagIn12Order) {
    EXPECT_EQ(scan_name(ScanType::tcp_other, SYN | FIN | RST),
              "Unknown Type: TCP Packet Flags: SYN: 1 FIN: 1 ACK: 0 PSH: 0 URG: 0 RST: 1");
    EXPECT_EQ(scan_name(ScanType::tcp_other, ACK | PSH | URG),
              "Unknown Type: TCP Packet Flags: SYN: 0 FIN: 0 ACK: 1 PSH: 1 URG: 1 RST: 0");
    EXPECT_EQ(scan_name(ScanType::tcp_other, 0xff),
              "Unknown Type: TCP Packet Flags: SYN: 1 FIN: 1 ACK: 1 PSH: 1 URG: 1 RST: 1");
}

TEST(ScanName, ClassifiedOtherRoundTrip) {
    const uint8_t f = SYN | ACK;
    EXPECT_EQ(scan_name(classify(tcp(f)), f),
              "Unknown Type: TCP Packet Flags: SYN: 1 FIN: 0 ACK: 1 PSH: 0 URG: 0 RST: 0");
}

}  // namespace
}  // namespace portsentry::engine
