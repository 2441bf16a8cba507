#!/usr/bin/env python3
"""A hostile SFTP (version 3) server for the end-to-end tests, run as sshd's `sftp`
subsystem: `python3 hostile_sftp_server.py MODE`. It answers just enough of the protocol
for a listing or a download, then misbehaves as MODE says:

- `huge-names`: every directory listing is endless, each entry named with 16 KiB;
- `endless-dots`: every directory listing is an endless stream of `.` entries;
- `growing-file`: any path is a 1 KiB regular file by name (stat), but the open file
  (fstat) claims a petabyte; reads return end-of-file.

Requests it does not know get SSH_FX_OP_UNSUPPORTED.
"""

import struct
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "huge-names"

FX_OK, FX_EOF, FX_NO_SUCH_FILE, FX_OP_UNSUPPORTED = 0, 1, 2, 8
DIR_MODE, FILE_MODE = 0o040755, 0o100644


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = sys.stdin.buffer.read(n - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data


def send(kind, payload):
    out = sys.stdout.buffer
    out.write(struct.pack(">IB", len(payload) + 1, kind) + payload)
    out.flush()


def string(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def attrs(mode, size):
    # SIZE | UIDGID | PERMISSIONS | ACMODTIME
    return struct.pack(">IQIIIII", 0xF, size, 1000, 1000, mode, 1700000000, 1700000000)


def status(rid, code, message=""):
    send(101, struct.pack(">II", rid, code) + string(message) + string("en"))


def name_packet(rid, entries):
    body = struct.pack(">II", rid, len(entries))
    for name, mode in entries:
        body += string(name) + string("?") + attrs(mode, 0)
    send(104, body)


def parse_string(buf, at):
    (n,) = struct.unpack(">I", buf[at : at + 4])
    return buf[at + 4 : at + 4 + n], at + 4 + n


def main():
    handles = 0
    listed = 0
    while True:
        (length,) = struct.unpack(">I", read_exact(4))
        packet = read_exact(length)
        kind = packet[0]
        if kind == 1:  # INIT
            send(2, struct.pack(">I", 3))
            continue
        (rid,) = struct.unpack(">I", packet[1:5])
        body = packet[5:]
        if kind == 16:  # REALPATH
            path, _ = parse_string(body, 0)
            path = path.decode(errors="replace")
            if not path.startswith("/"):
                path = "/home/hostile/" + ("" if path in (".", "") else path)
            name_packet(rid, [(path.rstrip("/") or "/", DIR_MODE)])
        elif kind in (7, 17):  # LSTAT, STAT
            path, _ = parse_string(body, 0)
            is_file = MODE == "growing-file"
            send(105, struct.pack(">I", rid) + attrs(FILE_MODE if is_file else DIR_MODE, 1024))
        elif kind in (3, 11):  # OPEN, OPENDIR
            handles += 1
            send(102, struct.pack(">I", rid) + string(b"h%d" % handles))
        elif kind == 8:  # FSTAT
            send(105, struct.pack(">I", rid) + attrs(FILE_MODE, 1 << 50))
        elif kind == 5:  # READ
            status(rid, FX_EOF, "end of file")
        elif kind == 12:  # READDIR
            if MODE == "huge-names":
                entries = [("n%07d-" % (listed + i) + "x" * 16384, FILE_MODE) for i in range(50)]
                listed += 50
                name_packet(rid, entries)
            elif MODE == "endless-dots":
                name_packet(rid, [(".", DIR_MODE)] * 100)
            else:
                status(rid, FX_EOF, "end of directory")
        elif kind == 4:  # CLOSE
            status(rid, FX_OK)
        else:
            status(rid, FX_OP_UNSUPPORTED, "not supported here")


main()
