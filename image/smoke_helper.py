#!/usr/bin/env python3
"""Helpers for image/smoke.sh (Python standard library only).

  smoke_helper.py sh SOCKET COMMAND [--timeout S]
      Run COMMAND in a root shell on the guest's serial console (qemu's
      chardev unix socket SOCKET), logging in as root first if the console
      shows a login prompt. Prints COMMAND's output; exits with its status.

  smoke_helper.py call URL TOKEN EVENT JSON_ARGS [--timeout S]
      Connect to the hub at URL (http://127.0.0.1:PORT) with Socket.IO v5
      over a WebSocket (Engine.IO v4), authenticate with TOKEN, emit EVENT
      with JSON_ARGS and an ack id, print the ack's JSON; exit 0 if the ack
      has "ok": true.
"""

import base64
import json
import os
import re
import socket
import struct
import sys
import time

PROMPT = "SMOKE-PROMPT# "


# --- serial console ----------------------------------------------------------


class Console:
    def __init__(self, path, timeout):
        self.deadline = time.monotonic() + timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = ""

    def send(self, text):
        self.sock.sendall(text.encode())

    def read_until(self, patterns, limit=None):
        """Read until one of the regexes matches the buffer; return its index."""
        end = self.deadline if limit is None else min(self.deadline, time.monotonic() + limit)
        while True:
            for i, p in enumerate(patterns):
                m = re.search(p, self.buf)
                if m:
                    return i, m
            left = end - time.monotonic()
            if left <= 0:
                return None, None
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise SystemExit("serial console closed")
            self.buf += data.decode("utf-8", "replace").replace("\r", "")

    def shell(self):
        """Get to a root shell with our prompt."""
        for _ in range(20):
            self.buf = ""
            self.send("\r")
            i, _ = self.read_until([re.escape(PROMPT) + r"$", r"login: *$", r"Password: *$", r"[#$] *$"], 15)
            if i == 0:
                return
            if i == 1:
                self.buf = ""
                self.send("root\r")
                j, _ = self.read_until([r"[#$] *$", r"Password: *$", r"Login incorrect"], 30)
                if j == 1:
                    self.send("\r")  # root has no password on the image
                    self.read_until([r"[#$] *$", r"Login incorrect"], 30)
                continue
            if i == 2:
                self.send("\r")
                time.sleep(2)
                continue
            if i == 3:
                # Any shell prompt: make ours (quoted so that the echo of the
                # command does not look like the prompt).
                self.buf = ""
                self.send(
                    "stty -echo cols 400; export PS1='SMOKE-''PROMPT# ' SYSTEMD_PAGER=cat PAGER=cat "
                    "SYSTEMD_COLORS=0 TERM=dumb; dmesg -n 1\r"
                )
                self.read_until([re.escape(PROMPT) + r"$"], 15)
                return
            time.sleep(2)
        raise SystemExit("no shell on the serial console")

    def run(self, command):
        self.shell()
        tag = "%x" % int.from_bytes(os.urandom(4), "big")
        self.buf = ""
        # The markers are split in the command text, so only the output
        # contains them whole.
        self.send(
            "printf '%%s\\n' 'BEGIN-''%s'; %s; printf '%%s\\n' \"END-\"'%s'\"-$?\"\r"
            % (tag, command, tag)
        )
        i, m = self.read_until([re.compile(r"BEGIN-%s\n(.*?)END-%s-(\d+)\n" % (tag, tag), re.S)])
        if i is None:
            sys.stdout.write(self.buf)
            raise SystemExit("timed out waiting for: %s" % command)
        return m.group(1), int(m.group(2))


# --- Socket.IO over a WebSocket --------------------------------------------


class WebSocket:
    def __init__(self, url, timeout):
        m = re.match(r"http://([^/:]+):(\d+)", url)
        if not m:
            raise SystemExit("URL must be http://HOST:PORT")
        host, port = m.group(1), int(m.group(2))
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host, port, key)
        )
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise SystemExit("connection closed during the WebSocket handshake")
            head += chunk
        head, self.rest = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode()
        if " 101 " not in status:
            raise SystemExit("WebSocket handshake refused: %s" % status)

    def _recv_exact(self, n):
        while len(self.rest) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("WebSocket closed")
            self.rest += chunk
        data, self.rest = self.rest[:n], self.rest[n:]
        return data

    def send_text(self, text, opcode=1):
        payload = text.encode() if isinstance(text, str) else text
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv_text(self):
        while True:
            b1, b2 = self._recv_exact(2)
            opcode, n = b1 & 0x0F, b2 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._recv_exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._recv_exact(8))
            payload = self._recv_exact(n)
            if opcode == 1:
                return payload.decode()
            if opcode == 8:
                raise SystemExit("WebSocket closed by the hub: %r" % payload)
            if opcode == 9:
                self.send_text(payload, opcode=10)


def call(url, token, event, args, timeout):
    ws = WebSocket(url, timeout)
    opened = ws.recv_text()
    if not opened.startswith("0"):
        raise SystemExit("expected an Engine.IO open packet, got %r" % opened)
    ws.send_text("40" + json.dumps({"token": token}))
    deadline = time.monotonic() + timeout
    connected = False
    while time.monotonic() < deadline:
        msg = ws.recv_text()
        if msg == "2":
            ws.send_text("3")
        elif msg.startswith("44"):
            raise SystemExit("CONNECT refused: %s" % msg[2:])
        elif msg.startswith("40") and not connected:
            connected = True
            ws.send_text("421" + json.dumps([event, args]))
        elif msg.startswith("431"):
            body = json.loads(msg[3:])
            ack = body[0] if isinstance(body, list) and body else body
            print(json.dumps(ack))
            return 0 if isinstance(ack, dict) and ack.get("ok") else 1
    raise SystemExit("no ack within %ss" % timeout)


def main(argv):
    timeout = 120.0
    if "--timeout" in argv:
        i = argv.index("--timeout")
        timeout = float(argv[i + 1])
        del argv[i : i + 2]
    if len(argv) == 3 and argv[0] == "sh":
        out, rc = Console(argv[1], timeout).run(argv[2])
        sys.stdout.write(out)
        return rc
    if len(argv) == 5 and argv[0] == "call":
        return call(argv[1], argv[2], argv[3], json.loads(argv[4]), timeout)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
