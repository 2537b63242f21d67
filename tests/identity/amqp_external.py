"""A minimal AMQP 0-9-1 client that logs in with SASL EXTERNAL over mutual
TLS (the identity is the client certificate) and opens the vhost "/".

    python3 amqp_external.py HOST PORT CA CERT KEY

Prints "opened vhost /" and exits 0 when the broker accepts the login and
the vhost; prints "refused: CODE TEXT" and exits 1 when it closes the
connection instead. Used by tests/identity_services.rs.
"""

import socket
import ssl
import struct
import sys

CONNECTION = 10
START, START_OK, TUNE, TUNE_OK, OPEN, OPEN_OK, CLOSE = 10, 11, 30, 31, 40, 41, 50


def shortstr(text):
    data = text.encode()
    return bytes([len(data)]) + data


def longstr(data):
    return struct.pack(">I", len(data)) + data


def send_method(sock, method, args):
    payload = struct.pack(">HH", CONNECTION, method) + args
    sock.sendall(struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce")


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise SystemExit(f"refused: the broker closed the connection after {out!r}")
        out += chunk
    return out


def read_method(sock):
    _kind, _channel, size = struct.unpack(">BHI", read_exact(sock, 7))
    payload = read_exact(sock, size + 1)[:-1]
    cls, method = struct.unpack(">HH", payload[:4])
    args = payload[4:]
    if (cls, method) == (CONNECTION, CLOSE):
        code = struct.unpack(">H", args[:2])[0]
        print(f"refused: {code} {args[3:3 + args[2]].decode()}")
        sys.exit(1)
    return cls, method, args


def mechanisms(start_args):
    # version-major, version-minor, server-properties (table), mechanisms
    table_len = struct.unpack(">I", start_args[2:6])[0]
    rest = start_args[6 + table_len:]
    return rest[4:4 + struct.unpack(">I", rest[:4])[0]].decode().split()


def main():
    host, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    with socket.create_connection((host, port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        cls, method, args = read_method(sock)
        assert (cls, method) == (CONNECTION, START), (cls, method)
        offered = mechanisms(args)
        if "EXTERNAL" not in offered:
            print(f"refused: EXTERNAL is not offered, only {offered}")
            sys.exit(1)
        # authentication_failure_close: a refused login is answered with
        # connection.close and its reason instead of a bare disconnect.
        capabilities = shortstr("authentication_failure_close") + b"t\x01"
        properties = shortstr("capabilities") + b"F" + longstr(capabilities)
        send_method(sock, START_OK, longstr(properties) + shortstr("EXTERNAL")
                    + longstr(b"") + shortstr("en_US"))
        cls, method, args = read_method(sock)
        assert (cls, method) == (CONNECTION, TUNE), (cls, method)
        channel_max, frame_max, _heartbeat = struct.unpack(">HIH", args[:8])
        send_method(sock, TUNE_OK, struct.pack(">HIH", channel_max, frame_max, 0))
        send_method(sock, OPEN, shortstr("/") + shortstr("") + b"\x00")
        cls, method, args = read_method(sock)
        assert (cls, method) == (CONNECTION, OPEN_OK), (cls, method)
        send_method(sock, CLOSE, struct.pack(">H", 200) + shortstr("done")
                    + struct.pack(">HH", 0, 0))
        print("opened vhost /")


main()
