"""acme2certifier (a real RFC 8555 server, from PyPI) over HTTPS for the front door's test.

Usage: a2c_server.py DIR PORT DNS_SERVER
DIR holds ca.pem/ca.key (the test's CA, which issues both this server's certificate and
the ones ordered), and gets acme_srv.cfg, the database and issued certificates. HTTP-01
challenges are checked against the addresses DNS_SERVER gives.
"""
import os
import socketserver
import ssl
import subprocess
import sys
from wsgiref.simple_server import WSGIServer, WSGIRequestHandler, make_server

base, port, dns = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(os.path.join(base, "certs"), exist_ok=True)
with open(os.path.join(base, "acme_srv.cfg"), "w") as f:
    f.write(f"""[DEFAULT]
debug: True
dns_server_list: ["{dns}"]

[Nonce]
nonce_check_disable: False

[CAhandler]
handler_module: acme2certifier.cahandlers.openssl_ca_handler
issuing_ca_key: {base}/ca.key
issuing_ca_cert: {base}/ca.pem
issuing_ca_crl: {base}/ca.crl
cert_save_path: {base}/certs
ca_cert_chain_list: ["{base}/ca.pem"]
cert_validity_days: 30

[DBhandler]
handler_module: acme2certifier.dbhandlers.wsgi_handler
dbfile: {base}/acme_srv.db

[Directory]
tos_url: https://127.0.0.1:{port}/tos

[Challenge]
challenge_validation_timeout: 5

[Order]
tnauthlist_support: False
""")
os.environ["ACME_SRV_CONFIGFILE"] = os.path.join(base, "acme_srv.cfg")
os.environ["ACME2CERTIFIER_BASE_DIR"] = base

# This server's own certificate, for 127.0.0.1, from the same CA.
subprocess.run(
    ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
     "-nodes", "-keyout", f"{base}/server.key", "-out", f"{base}/server.csr",
     "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
with open(f"{base}/server.ext", "w") as f:
    f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
subprocess.run(
    ["openssl", "x509", "-req", "-in", f"{base}/server.csr", "-CA", f"{base}/ca.pem",
     "-CAkey", f"{base}/ca.key", "-CAcreateserial", "-days", "2",
     "-extfile", f"{base}/server.ext", "-out", f"{base}/server.pem"],
    check=True, capture_output=True)

from acme2certifier.share.acme2certifier_wsgi import application  # noqa: E402


def https_app(environ, start_response):
    environ["wsgi.url_scheme"] = "https"
    return application(environ, start_response)


class Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


srv = make_server("127.0.0.1", port, https_app, server_class=Server, handler_class=Quiet)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{base}/server.pem", f"{base}/server.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("ready", flush=True)
srv.serve_forever()
