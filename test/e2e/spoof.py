#!/usr/bin/env python3
# Sends UDP datagrams with chosen (possibly forged) IPv4 source addresses
# through a raw socket (IPPROTO_RAW implies IP_HDRINCL), as an off-path
# attacker would: the anti-amplification e2e test uses it to send HELLOs,
# garbage and forged JOINs "from" a victim namespace.
#
# stdin: JSON {"dst": "a.b.c.d", "dport": n, "gap_us": n,
#              "packets": [{"src": "...", "sport": n, "data": base64, "repeat": n}]}
# stdout: JSON {"packets": n, "ip_bytes": n}
# --ready: first print "ready" once the interpreter is up, then read stdin
# (a caller that must send at a moment starts it ahead: on a loaded machine
# python3 alone took 6-9 s to start).
import base64
import json
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def datagram(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp_len = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    total = 20 + udp_len
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + udp


def main() -> None:
    if "--ready" in sys.argv[1:]:
        print("ready", flush=True)
    spec = json.load(sys.stdin)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    gap = spec.get("gap_us", 0) / 1e6
    count = 0
    total = 0
    for p in spec["packets"]:
        pkt = datagram(p["src"], spec["dst"], p["sport"], spec["dport"], base64.b64decode(p["data"]))
        for _ in range(p.get("repeat", 1)):
            raw.sendto(pkt, (spec["dst"], 0))
            count += 1
            total += len(pkt)
            if gap:
                time.sleep(gap)
    print(json.dumps({"packets": count, "ip_bytes": total}))


main()
