"""A DNS server for the front door's test: every A question under NAME's zone is
answered with ADDRESS (dnspython, which acme2certifier brings).

Usage: dns_server.py LISTEN ZONE ADDRESS
"""
import socket
import sys

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

listen, zone, address = sys.argv[1], sys.argv[2].rstrip(".") + ".", sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((listen, 53))
print("ready", flush=True)
while True:
    data, peer = sock.recvfrom(4096)
    try:
        query = dns.message.from_wire(data)
    except Exception:
        continue
    reply = dns.message.make_response(query)
    for q in query.question:
        name = q.name.to_text()
        if not (name == zone or name.endswith("." + zone)):
            reply.set_rcode(dns.rcode.REFUSED)
        elif q.rdtype == dns.rdatatype.A:
            reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", address))
    sock.sendto(reply.to_wire(), peer)
