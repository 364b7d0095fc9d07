"""A customer's site inside a container, for the front door's test (port 8080).

/headers   the forwarding headers it was given, as JSON
/stream    "one", then "two" once /tmp/go exists (a proxy that buffers never shows "one")
/ws        switches protocols (101) and then echoes raw bytes, as a WebSocket server would
"""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/headers":
            body = json.dumps({
                "host": self.headers.get("Host"),
                "for": self.headers.get("X-Forwarded-For"),
                "proto": self.headers.get("X-Forwarded-Proto"),
                "forwarded_host": self.headers.get("X-Forwarded-Host"),
                "connection": self.headers.get("Connection"),
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"4\r\none\n\r\n")
            self.wfile.flush()
            for _ in range(600):
                if os.path.exists("/tmp/go"):
                    break
                time.sleep(0.05)
            self.wfile.write(b"4\r\ntwo\n\r\n0\r\n\r\n")
            self.wfile.flush()
        elif self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\n\r\n")
            self.wfile.flush()
            while True:
                data = self.connection.recv(4096)
                if not data:
                    break
                self.connection.sendall(data)
            self.close_connection = True
        else:
            self.send_error(404)


ThreadingHTTPServer(("0.0.0.0", 8080), Site).serve_forever()
