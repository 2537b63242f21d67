#!/usr/bin/env python3
"""Checks certificates made by uca with Python's own ssl module (standard
library only). Run by tests/interop.rs; every result is one line starting
with OK or FAIL.

  interop.py verify JOBS
      JOBS holds one check per line, tab-separated:
      ID CA CHAIN KEY USAGE NAME HELPER_CHAIN HELPER_KEY
      Python's ssl has no offline chain check, so each check is a real TLS
      handshake over memory BIOs, nothing else in between:
      USAGE server: a server presents CHAIN/KEY; a client made by
        ssl.create_default_context(cafile=CA) verifies it (for NAME, or
        with check_hostname off if NAME is "-").
      USAGE client: a server (CERT_REQUIRED, trusting CA) asks for a client
        certificate and verifies CHAIN/KEY; it presents HELPER_CHAIN/KEY,
        which the client does not check.
  interop.py server --ca CA --cert CHAIN --key KEY [--tls 1.2|1.3] [--timeout S]
      Listens on 127.0.0.1 (a free port, printed as "LISTENING PORT"),
      CERT_REQUIRED against CA, reads one line, answers "pong: LINE".
  interop.py client --ca CA --cert CHAIN --key KEY --port P --name NAME [--tls ...] [--timeout S]
      create_default_context(cafile=CA), check_hostname for NAME, presents
      CHAIN/KEY (unless --cert is "-"), sends one line, prints the answer.

Every context also sets VERIFY_X509_STRICT, which Python 3.13 turns on by
default, so certificates that newer Pythons refuse are caught here too.
"""

import argparse
import socket
import ssl
import sys


def strict(ctx):
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def limit(ctx, version):
    if version == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    elif version != "any":
        raise ValueError("unknown --tls %r" % version)
    return ctx


def server_context(ca, chain, key, version="any"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca)
    return limit(strict(ctx), version)


def client_context(ca, chain, key, version="any"):
    ctx = ssl.create_default_context(cafile=ca)
    if chain != "-":
        ctx.load_cert_chain(chain, key)
    return limit(strict(ctx), version)


def subject(cert):
    if not cert:
        return "(none)"
    parts = []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            parts.append("%s=%s" % ({"commonName": "CN"}.get(k, k), v))
    return ",".join(parts)


def one_line(text):
    return " ".join(str(text).split())


def memory_handshake(server_ctx, client_ctx, server_hostname):
    """A full TLS handshake between two SSLObjects over memory BIOs, plus
    one record each way (so a TLS 1.3 server's verdict on the client
    certificate reaches the client). Returns (server_obj, client_obj);
    raises with the side that failed."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(20):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                except ssl.SSLError as e:
                    raise RuntimeError("%s: %s" % (side, one_line(e)))
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if done["client"] and done["server"]:
            break
    else:
        raise RuntimeError("handshake did not finish")
    try:
        client.write(b"ping\n")
        s_in.write(c_out.read())
        got = server.read(64)
        server.write(b"pong: " + got)
        c_in.write(s_out.read())
        reply = client.read(64)
    except ssl.SSLError as e:
        raise RuntimeError("after the handshake: %s" % one_line(e))
    if reply != b"pong: ping\n":
        raise RuntimeError("unexpected reply %r" % reply)
    return server, client


def verify_one(ca, chain, key, usage, name, helper_chain, helper_key):
    if usage == "server":
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(chain, key)
        client_ctx = strict(ssl.create_default_context(cafile=ca))
        if name == "-":
            client_ctx.check_hostname = False
            hostname = None
        else:
            hostname = name
        _, client = memory_handshake(server_ctx, client_ctx, hostname)
        return "server certificate %s accepted by the client (%s)" % (
            subject(client.getpeercert()),
            client.version(),
        )
    if usage == "client":
        server_ctx = server_context(ca, helper_chain, helper_key)
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        client_ctx.load_cert_chain(chain, key)
        server, _ = memory_handshake(server_ctx, client_ctx, None)
        return "client certificate %s accepted by the server (%s)" % (
            subject(server.getpeercert()),
            server.version(),
        )
    raise ValueError("unknown usage %r" % usage)


def verify_jobs(path):
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 8:
                raise ValueError("bad job line %r" % line)
            try:
                detail = verify_one(*fields[1:8])
                print("OK %s %s" % (fields[0], detail), flush=True)
            except Exception as e:  # noqa: BLE001 - every failure is reported
                print("FAIL %s %s" % (fields[0], one_line(e)), flush=True)


def read_line(conn):
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1024)
        if not chunk:
            raise RuntimeError("connection closed before a full line (got %r)" % data)
        data += chunk
    return data.decode().rstrip("\r\n")


def serve(args):
    ctx = server_context(args.ca, args.cert, args.key, args.tls)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(args.timeout)
        print("LISTENING %d" % listener.getsockname()[1], flush=True)
        raw, _ = listener.accept()
        raw.settimeout(args.timeout)
        with ctx.wrap_socket(raw, server_side=True) as conn:
            line = read_line(conn)
            conn.sendall(("pong: %s\n" % line).encode())
            peer, version = conn.getpeercert(), conn.version()
            # A clean TLS close (close_notify), as Go and Java send: OpenSSL 3
            # clients report a bare TCP close as "unexpected eof".
            try:
                conn.unwrap()
            except (OSError, ssl.SSLError):
                pass
            print(
                "OK server: peer=%s protocol=%s got=%s"
                % (subject(peer), version, line),
                flush=True,
            )


def connect(args):
    ctx = client_context(args.ca, args.cert, args.key, args.tls)
    with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=args.name) as conn:
            conn.sendall(b"ping from python\n")
            reply = read_line(conn)
            print(
                "OK client: peer=%s protocol=%s reply=%s"
                % (subject(conn.getpeercert()), conn.version(), reply),
                flush=True,
            )


def main():
    if len(sys.argv) < 2:
        print("FAIL usage: interop.py verify JOBS | server ... | client ...")
        return 2
    mode = sys.argv[1]
    try:
        if mode == "verify":
            if len(sys.argv) != 3:
                raise ValueError("usage: interop.py verify JOBS")
            verify_jobs(sys.argv[2])
            return 0
        p = argparse.ArgumentParser(prog="interop.py " + mode)
        p.add_argument("--ca", required=True)
        p.add_argument("--cert", required=True)
        p.add_argument("--key", default="-")
        p.add_argument("--name")
        p.add_argument("--port", type=int)
        p.add_argument("--tls", default="any")
        p.add_argument("--timeout", type=float, default=15)
        args = p.parse_args(sys.argv[2:])
        if mode == "server":
            serve(args)
        elif mode == "client":
            if not args.port or not args.name:
                raise ValueError("client needs --port and --name")
            connect(args)
        else:
            raise ValueError("unknown mode %r" % mode)
        return 0
    except Exception as e:  # noqa: BLE001 - every failure is reported
        print("FAIL %s: %s: %s" % (mode, type(e).__name__, one_line(e)), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
