#!/usr/bin/python3
# Regenerates the replay fixtures: cd tests/data/pcap && /usr/bin/python3 make-probes.py
# (Debian python3-scapy). Consumed by tests/unit/kernel/test_sources.cpp.
from scapy.all import IP, IPv6, TCP, UDP, Ether, Dot1Q, ARP, wrpcap
# LINKTYPE_RAW (101): records start at the IP header, as NFQUEUE hands them over.
raw = [
  IP(src="198.51.100.2", dst="192.0.2.1", ttl=64, id=1)/TCP(sport=40000, dport=9, flags="S", seq=1000),
  IP(src="198.51.100.2", dst="192.0.2.1", ttl=64, id=2)/TCP(sport=40001, dport=22, flags="F", seq=2000),
  IPv6(src="2001:db8::2", dst="2001:db8::1", hlim=64)/UDP(sport=53000, dport=53),
]
for i, p in enumerate(raw):
    p.time = 1700000000 + i
wrpcap("probes-raw.pcap", raw, linktype=101)
# LINKTYPE_ETHERNET (1), as tcpdump -i eth0 writes: one plain IPv4 frame, one
# 802.1Q-tagged IPv6 frame, one ARP frame (not IP: skipped by the reader).
eth = [
  Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")/IP(src="203.0.113.7", dst="192.0.2.1", id=3)/TCP(sport=41000, dport=111, flags="S"),
  Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")/Dot1Q(vlan=10)/IPv6(src="2001:db8::7", dst="2001:db8::1")/TCP(sport=41001, dport=143, flags=""),
  Ether(src="02:00:00:00:00:02", dst="ff:ff:ff:ff:ff:ff")/ARP(psrc="192.0.2.7", pdst="192.0.2.1"),
]
for i, p in enumerate(eth):
    p.time = 1700000100 + i
wrpcap("probes-en10mb.pcap", eth)
