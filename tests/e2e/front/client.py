"""A client of the front door for its test, speaking TLS with the test's CA.

client.py stream HOST ADDRESS CA    prints each line of /stream as it comes; reads a line
                                    of stdin between the first and the rest
client.py upgrade HOST ADDRESS CA   upgrades /ws, sends "ping", prints what comes back
"""
import socket
import ssl
import sys

mode, host, address, ca = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
raw = socket.create_connection((address, 443), timeout=20)
conn = ctx.wrap_socket(raw, server_hostname=host)
if mode == "stream":
    conn.sendall(f"GET /stream HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    f = conn.makefile("rb")
    while f.readline() not in (b"\r\n", b""):
        pass
    size = int(f.readline(), 16)
    print(f.read(size).decode().strip(), flush=True)
    f.readline()
    sys.stdin.readline()
    size = int(f.readline(), 16)
    print(f.read(size).decode().strip(), flush=True)
elif mode == "upgrade":
    conn.sendall(f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(1)
        if not chunk:
            break
        head += chunk
    print(head.split(b"\r\n")[0].decode(), flush=True)
    conn.sendall(b"ping")
    print(conn.recv(4).decode(), flush=True)
