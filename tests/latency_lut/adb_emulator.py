"""A loopback Android device for tests: the device side of the ADB wire protocol on 127.0.0.1.

The real ``adb`` client and server talk to it after ``adb -P <port> connect 127.0.0.1:<emulator port>``. It
speaks the CNXN handshake (no AUTH, or only AUTH in ``unauthorized`` mode), OPEN/OKAY/WRTE/CLSE streams, the
legacy ``shell:`` service (which, like a real adbd without shell v2, does not return the exit status) and the
``sync:`` service (STAT/SEND/DATA/DONE/RECV/LIST/QUIT) used by ``adb push``/``pull``.

Its "device" is a temporary directory on the host: shell commands run with ``/bin/sh -c`` in that directory, and
absolute ``/data/...`` and ``/sdcard/...`` paths (in commands and sync requests) are mapped under it, so
``/data/local/tmp/x`` lives at ``<root>/data/local/tmp/x``. A ``getprop`` script reading ``<root>/system/build.prop``
is first on PATH; the host's Python (with onnxruntime) is next, so ``python3`` runs the project's runner.

Faults for retry tests: ``fault(command) -> None | "drop" | "disconnect"`` is asked before each shell command;
``drop`` closes that stream with no output, ``disconnect`` drops the whole transport (the device goes away until
``adb connect`` again).
"""
from __future__ import annotations

import os
import queue
import re
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

A_CNXN, A_OPEN, A_OKAY, A_WRTE, A_CLSE, A_AUTH = (
    0x4E584E43, 0x4E45504F, 0x59414B4F, 0x45545257, 0x45534C43, 0x48545541)
A_VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN = 1
HEADER = struct.Struct("<6I")
SYNC_HEADER = struct.Struct("<4sI")
DEFAULT_PROPS = {
    "ro.product.model": "ENS-Emu", "ro.product.name": "ens_emu", "ro.product.device": "ensemu",
    "ro.product.manufacturer": "ENS", "ro.board.platform": "loopback", "ro.soc.model": "HostCPU",
    "ro.hardware": "ensemu", "ro.product.cpu.abi": "x86_64", "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
}
_DEVICE_PATH = re.compile(r"(?<![\w./-])/(data|sdcard)/")


def _checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


class _Stream:
    """One ADB stream: our id, the host's id, an OKAY event for flow control, an inbox for sync data."""

    def __init__(self, local_id: int, remote_id: int):
        self.local_id, self.remote_id = local_id, remote_id
        self.acked = threading.Event()
        self.inbox: "queue.Queue[bytes | None]" = queue.Queue()
        self.closed = False


class _Connection:
    """The transport to one adb server: reads packets, dispatches them, and runs services in threads."""

    def __init__(self, emu: "AdbDeviceEmulator", sock: socket.socket):
        self.emu, self.sock = emu, sock
        self.lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.max_payload = 4096
        self.alive = True

    # ---- packets ---------------------------------------------------------------------------------------
    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        pkt = HEADER.pack(cmd, arg0, arg1, len(data), _checksum(data), cmd ^ 0xFFFFFFFF) + data
        with self.lock:
            try:
                self.sock.sendall(pkt)
            except OSError:
                self.alive = False

    def _recv_exact(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return buf

    def serve(self) -> None:
        try:
            while self.alive:
                head = self._recv_exact(HEADER.size)
                if head is None:
                    break
                cmd, arg0, arg1, length, _, _ = HEADER.unpack(head)
                data = self._recv_exact(length) if length else b""
                if data is None:
                    break
                self._dispatch(cmd, arg0, arg1, data)
        finally:
            self.close()

    def close(self) -> None:
        self.alive = False
        for st in list(self.streams.values()):
            st.closed = True
            st.acked.set()
            st.inbox.put(None)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _dispatch(self, cmd: int, arg0: int, arg1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.max_payload = min(arg1 or 4096, MAX_PAYLOAD)
            if self.emu.mode == "device":
                self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, self.emu.banner().encode())
            elif self.emu.mode == "unauthorized":
                self.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
            # mode "silent": never answer, the host keeps the device offline
        elif cmd == A_AUTH:
            if arg0 == 2:  # a signature we never accept: ask again until the host offers its public key
                self.send(A_AUTH, AUTH_TOKEN, 0, os.urandom(20))
        elif cmd == A_OPEN:
            self._open(arg0, data.rstrip(b"\0").decode("utf-8", "replace"))
        elif cmd == A_OKAY:
            st = self.streams.get(arg1)
            if st is not None:
                st.acked.set()
        elif cmd == A_WRTE:
            st = self.streams.get(arg1)
            if st is not None:
                self.send(A_OKAY, st.local_id, st.remote_id)
                st.inbox.put(data)
        elif cmd == A_CLSE:
            st = self.streams.pop(arg1, None)
            if st is not None:
                st.closed = True
                st.acked.set()
                st.inbox.put(None)

    # ---- streams ---------------------------------------------------------------------------------------
    def _open(self, remote_id: int, service: str) -> None:
        local_id, self.next_id = self.next_id, self.next_id + 1
        if service.startswith("shell:"):
            target: Callable = self._shell
            arg = service[len("shell:"):]
        elif service.startswith("sync:"):
            target, arg = self._sync, None
        else:
            self.send(A_CLSE, 0, remote_id)
            return
        st = _Stream(local_id, remote_id)
        self.streams[local_id] = st
        self.send(A_OKAY, local_id, remote_id)
        threading.Thread(target=target, args=(st, arg), daemon=True).start()

    def write(self, st: _Stream, data: bytes) -> bool:
        """Send data on a stream, one WRTE at a time, each waiting for the host's OKAY."""
        for i in range(0, len(data), self.max_payload):
            if st.closed or not self.alive:
                return False
            st.acked.clear()
            self.send(A_WRTE, st.local_id, st.remote_id, data[i:i + self.max_payload])
            if not st.acked.wait(30) or st.closed:
                return False
        return True

    def finish(self, st: _Stream) -> None:
        if not st.closed:
            st.closed = True
            self.streams.pop(st.local_id, None)
            self.send(A_CLSE, st.local_id, st.remote_id)

    def _shell(self, st: _Stream, command: str) -> None:
        self.emu.commands.append(command)
        fault = self.emu.fault(command) if self.emu.fault else None
        if fault == "disconnect":
            self.close()
            return
        if fault == "drop":
            self.finish(st)
            return
        proc = subprocess.Popen(["/bin/sh", "-c", self.emu.map_paths(command)], cwd=self.emu.root,
                                env=self.emu.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        assert proc.stdout is not None
        while True:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            if not self.write(st, chunk):
                proc.kill()
                break
        proc.wait()
        self.finish(st)  # legacy shell: the exit status is lost here, as on a real device without shell v2

    def _sync(self, st: _Stream, _: None) -> None:
        buf = bytearray()

        def take(n: int) -> bytes | None:
            while len(buf) < n:
                data = st.inbox.get()
                if data is None:
                    return None
                buf.extend(data)
            out = bytes(buf[:n])
            del buf[:n]
            return out

        while True:
            head = take(SYNC_HEADER.size)
            if head is None:
                return
            ident, length = SYNC_HEADER.unpack(head)
            if ident == b"QUIT":
                self.finish(st)
                return
            if ident == b"DATA" or ident == b"DONE":  # only valid inside SEND
                self.write(st, b"FAIL" + struct.pack("<I", 16) + b"unexpected data!")
                continue
            payload = take(length)
            if payload is None:
                return
            path = self.emu.device_path(payload.decode("utf-8", "replace"))
            if ident == b"STAT":
                try:
                    s = os.lstat(path)
                    reply = struct.pack("<4s3I", b"STAT", s.st_mode & 0xFFFFFFFF, s.st_size & 0xFFFFFFFF,
                                        int(s.st_mtime))
                except OSError:
                    reply = struct.pack("<4s3I", b"STAT", 0, 0, 0)
                self.write(st, reply)
            elif ident == b"SEND":
                self._receive_file(st, path, take)
            elif ident == b"RECV":
                self._send_file(st, path)
            elif ident == b"LIST":
                self._list(st, path)
            else:
                msg = f"unknown sync request {ident!r}".encode()
                self.write(st, b"FAIL" + struct.pack("<I", len(msg)) + msg)

    def _receive_file(self, st: _Stream, spec: str, take: Callable[[int], bytes | None]) -> None:
        path, _, mode = spec.rpartition(",")
        if not path:
            path, mode = spec, "33188"
        chunks = []
        while True:
            head = take(SYNC_HEADER.size)
            if head is None:
                return
            ident, length = SYNC_HEADER.unpack(head)
            if ident == b"DATA":
                data = take(length)
                if data is None:
                    return
                chunks.append(data)
            elif ident == b"DONE":
                break
            else:
                msg = f"expected DATA/DONE, got {ident!r}".encode()
                self.write(st, b"FAIL" + struct.pack("<I", len(msg)) + msg)
                return
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"".join(chunks))
        os.chmod(p, int(mode) & 0o777)
        self.write(st, b"OKAY" + struct.pack("<I", 0))

    def _send_file(self, st: _Stream, path: str) -> None:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            msg = str(e).encode()
            self.write(st, b"FAIL" + struct.pack("<I", len(msg)) + msg)
            return
        for i in range(0, len(data), 65536):
            chunk = data[i:i + 65536]
            self.write(st, b"DATA" + struct.pack("<I", len(chunk)) + chunk)
        self.write(st, b"DONE" + struct.pack("<I", 0))

    def _list(self, st: _Stream, path: str) -> None:
        try:
            names = sorted(os.listdir(path))
        except OSError:
            names = []
        for name in names:
            s = os.lstat(os.path.join(path, name))
            raw = name.encode()
            self.write(st, struct.pack("<4s4I", b"DENT", s.st_mode & 0xFFFFFFFF, s.st_size & 0xFFFFFFFF,
                                       int(s.st_mtime), len(raw)) + raw)
        self.write(st, struct.pack("<4s4I", b"DONE", 0, 0, 0, 0))


class AdbDeviceEmulator:
    """A fake device listening on 127.0.0.1:<port>; ``serial`` is what ``adb connect`` names it."""

    def __init__(self, root: str | Path, props: dict[str, str] | None = None, mode: str = "device",
                 fault: Callable[[str], str | None] | None = None):
        if mode not in ("device", "unauthorized", "silent"):
            raise ValueError(f"mode must be device, unauthorized or silent, got {mode!r}")
        self.root = Path(root).resolve()
        self.props = {**DEFAULT_PROPS, **(props or {})}
        self.mode, self.fault = mode, fault
        self.commands: list[str] = []
        self.connections: list[_Connection] = []
        self._server: socket.socket | None = None
        self._install()

    def _install(self) -> None:
        (self.root / "data/local/tmp").mkdir(parents=True, exist_ok=True)
        bindir = self.root / "system/bin"
        bindir.mkdir(parents=True, exist_ok=True)
        props = self.root / "system/build.prop"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        getprop = bindir / "getprop"
        getprop.write_text(
            "#!/bin/sh\n"
            f'PROPS="{props}"\n'
            'if [ $# -eq 0 ]; then\n'
            '  while IFS="=" read -r k v; do [ -n "$k" ] && echo "[$k]: [$v]"; done < "$PROPS"\n'
            'else\n'
            '  grep -m1 "^$1=" "$PROPS" | cut -d= -f2-\n'
            'fi\n')
        getprop.chmod(0o755)
        py = bindir / "python3"  # the host's interpreter (with onnxruntime) plays the phone's Python
        py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
        py.chmod(0o755)

    def banner(self) -> str:
        p = self.props
        return (f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
                f"ro.product.device={p['ro.product.device']};features=cmd")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADB")}
        env["PATH"] = f"{self.root / 'system/bin'}:/usr/bin:/bin"
        env["HOME"] = str(self.root / "data/local/tmp")
        return env

    def map_paths(self, command: str) -> str:
        return _DEVICE_PATH.sub(lambda m: f"{self.root}/{m.group(1)}/", command)

    def device_path(self, path: str) -> str:
        return str(self.root / path.lstrip("/")) if path.startswith("/") else str(self.root / path)

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> "AdbDeviceEmulator":
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        self._server = srv
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.getsockname()[1]

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            conn = _Connection(self, sock)
            self.connections.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in self.connections:
            conn.close()

    def __enter__(self) -> "AdbDeviceEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

