"""``adb`` backend: time models on an Android phone through the real Android Debug Bridge client.

Device choice: ``--serial`` or the only attached device; none, several, ``unauthorized`` or ``offline`` devices give
an error saying what to do. Models and the runner are pushed to ``/data/local/tmp/ens_lut`` and removed at the end.

Two facts of the wire protocol shape :meth:`AdbClient.shell`: the legacy ``shell:`` service does not return the
command's exit status (``adb shell false`` exits 0), so every command ends with ``echo __rc=$?`` and the status is
read back from the output; and it cannot signal end-of-file on stdin, so commands run with ``</dev/null``.
Transient failures (device gone offline, stream cut before the status marker, adb server restarts) are retried
with a bounded exponential backoff; TCP devices (``host:port``) are reconnected between tries.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from latency_lut.backends.base import Backend, BackendError, RunnerFailed
from latency_lut.runners import RunnerSpec, RunResult, make_runner

DEFAULT_REMOTE_DIR = "/data/local/tmp/ens_lut"
RC_MARKER = "__rc="
TRANSIENT_MARKERS: tuple[str, ...] = (
    "device offline", "device not found", "no devices/emulators found", "error: closed", "protocol fault",
    "connection reset", "broken pipe", "cannot connect", "failed to connect", "device still authorizing",
    "transport", "daemon not running",
)
PROPS: tuple[str, ...] = ("ro.product.manufacturer", "ro.product.model", "ro.product.device", "ro.board.platform",
                          "ro.soc.manufacturer", "ro.soc.model", "ro.hardware", "ro.product.cpu.abi",
                          "ro.build.version.release", "ro.build.version.sdk", "ro.build.fingerprint")


class AdbError(BackendError):
    """adb failed in a way retrying will not fix."""


class AdbTransientError(AdbError):
    """adb failed in a way that may pass (connection dropped, device briefly offline)."""


class AdbDeviceError(AdbError):
    """No usable device: none, several without ``--serial``, unauthorized, offline."""


@dataclass(frozen=True)
class DeviceRow:
    """One line of ``adb devices -l``."""

    serial: str
    state: str
    info: dict[str, str] = field(default_factory=dict)


def parse_devices(text: str) -> list[DeviceRow]:
    """Parse ``adb devices -l`` output (daemon start-up chatter and blank lines are skipped)."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*", "adb server", "adb: ")):
            continue
        if "no permissions" in line:  # "SERIAL  no permissions (user in plugdev group; ...); see [...]"
            rows.append(DeviceRow(line.split()[0], "no permissions"))
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        info = dict(p.split(":", 1) for p in parts[2:] if ":" in p)
        rows.append(DeviceRow(parts[0], parts[1], info))
    return rows


_STATE_HELP = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging?' prompt (or revoke and re-plug)",
    "offline": "re-plug the cable or run 'adb reconnect' (for a TCP device: 'adb connect HOST:PORT')",
    "no permissions": "add a udev rule for the phone (see 'adb devices' hint) or run the adb server as your user",
    "authorizing": "wait a few seconds for the device to finish authorizing",
    "connecting": "wait a few seconds for the device to finish connecting",
}


def choose_device(rows: Sequence[DeviceRow], serial: str | None = None) -> str:
    """The serial to use: ``serial`` if attached and ready, else the only ready device; clear errors otherwise."""
    listing = "\n".join(f"  {r.serial}\t{r.state}" for r in rows) or "  (none)"
    if serial:
        match = [r for r in rows if r.serial == serial]
        if not match:
            raise AdbDeviceError(f"--serial {serial}: no such device attached. 'adb devices -l' lists:\n{listing}")
        state = match[0].state
        if state != "device":
            raise AdbDeviceError(f"device {serial} is '{state}': {_STATE_HELP.get(state, 'it is not usable')}")
        return serial
    ready = [r for r in rows if r.state == "device"]
    if len(ready) == 1:
        return ready[0].serial
    if len(ready) > 1:
        raise AdbDeviceError(f"{len(ready)} devices attached; pick one with --serial:\n{listing}")
    if rows:
        why = "; ".join(f"{r.serial} is '{r.state}': {_STATE_HELP.get(r.state, 'not usable')}" for r in rows)
        raise AdbDeviceError(f"no usable device: {why}")
    raise AdbDeviceError("no device attached ('adb devices -l' lists none): plug in a phone with USB debugging "
                         "enabled, or 'adb connect HOST:PORT' for one over TCP")


@dataclass(frozen=True)
class ShellResult:
    status: int
    output: str


def split_status(output: str) -> ShellResult | None:
    """Split our ``__rc=N`` marker line off a legacy shell's output; None when the marker never came."""
    text = output.replace("\r\n", "\n")
    idx = text.rfind(RC_MARKER)
    if idx < 0 or (idx > 0 and text[idx - 1] != "\n"):
        return None
    m = re.match(r"__rc=(\d+)", text[idx:])
    if m is None:
        return None
    return ShellResult(int(m.group(1)), text[:idx])


def parse_getprop(text: str) -> dict[str, str]:
    """``getprop`` with no argument prints ``[key]: [value]`` lines."""
    return {m.group(1): m.group(2) for m in re.finditer(r"^\[([^\]]+)\]:\s*\[(.*)\]\s*$", text, re.MULTILINE)}


def parse_cpu_list(text: str) -> int | None:
    """Number of CPUs in a sysfs list like ``0-7`` or ``0-3,6``."""
    total = 0
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            total += (int(hi) if hi else int(lo)) - int(lo) + 1
        except ValueError:
            return None
    return total or None


class AdbClient:
    """The real ``adb`` executable, one device, retries on transient failures."""

    def __init__(self, adb: str = "adb", serial: str | None = None, server_port: int | None = None,
                 timeout_s: float = 1800.0, retries: int = 3, backoff_s: float = 1.0, backoff_max_s: float = 16.0,
                 sleep: Callable[[float], None] = time.sleep):
        path = shutil.which(adb) or (adb if Path(adb).is_file() else None)
        if path is None:
            raise AdbError(f"adb client not found at {adb!r}: install it ('apt-get install adb' or Android "
                           "platform-tools) or pass --adb PATH")
        self.adb, self.serial, self.server_port = path, serial, server_port
        self.timeout_s, self.retries, self.backoff_s, self.backoff_max_s = timeout_s, retries, backoff_s, backoff_max_s
        self.sleep = sleep
        self.retried = 0  # transient failures survived (reported in the LUT's device metadata)

    def _argv(self, args: Sequence[str], with_serial: bool = True) -> list[str]:
        argv = [self.adb]
        if self.server_port is not None:
            argv += ["-P", str(self.server_port)]
        if with_serial and self.serial:
            argv += ["-s", self.serial]
        return argv + list(args)

    def run(self, args: Sequence[str], timeout_s: float | None = None, with_serial: bool = True) -> str:
        """One adb invocation; non-zero status raises (transient or not, from its message)."""
        argv = self._argv(args, with_serial)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, errors="replace", timeout=timeout_s or self.timeout_s)
        except subprocess.TimeoutExpired as e:
            raise AdbTransientError(f"adb timed out after {timeout_s or self.timeout_s:.0f} s: "
                                    f"{shlex.join(argv)}") from e
        if proc.returncode != 0:
            msg = (proc.stderr + proc.stdout).strip()
            kind = AdbTransientError if any(t in msg.lower() for t in TRANSIENT_MARKERS) else AdbError
            raise kind(f"{shlex.join(argv)} failed (status {proc.returncode}): {msg or '<no output>'}")
        return proc.stdout

    def with_retries(self, what: str, fn: Callable[[], Any]) -> Any:
        """Call ``fn``; on a transient failure wait (1, 2, 4... s, capped) and try again, ``retries`` times."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except AdbTransientError as e:
                if attempt == self.retries:
                    raise AdbTransientError(f"{what}: still failing after {self.retries} retries: {e}") from e
                self.retried += 1
                self.sleep(min(self.backoff_s * 2 ** attempt, self.backoff_max_s))
                self.reconnect()

    def reconnect(self) -> None:
        """Re-attach a TCP device (``host:port``); USB devices come back by themselves."""
        if self.serial and re.fullmatch(r"[\w.\-]+:\d+", self.serial):
            try:
                self.run(["connect", self.serial], timeout_s=30, with_serial=False)
            except AdbError:
                pass

    # ---- devices -----------------------------------------------------------------------------------------
    def devices(self) -> list[DeviceRow]:
        return parse_devices(self.run(["devices", "-l"], timeout_s=60, with_serial=False))

    def select(self, serial: str | None = None) -> str:
        self.serial = choose_device(self.devices(), serial or self.serial)
        return self.serial

    # ---- services ----------------------------------------------------------------------------------------
    def shell(self, command: str, timeout_s: float | None = None) -> ShellResult:
        """Run ``command`` on the device; its exit status comes back through the ``__rc=`` marker."""
        wrapped = f"( {command} ) </dev/null 2>&1; echo {RC_MARKER}$?"  # a subshell: 'exit N' still reports

        def once() -> ShellResult:
            out = self.run(["shell", wrapped], timeout_s)
            res = split_status(out)
            if res is None:
                raise AdbTransientError(f"the shell stream ended before the exit status marker (connection lost?) "
                                        f"for: {command}\noutput so far:\n{out[-2000:]}")
            return res
        return self.with_retries(f"adb shell {command}", once)

    def push(self, local: str | Path, remote: str) -> None:
        local = Path(local)
        if not local.is_file():
            raise AdbError(f"cannot push {local}: no such file")
        self.with_retries(f"adb push {local}", lambda: self.run(["push", str(local), remote]))

    def getprops(self) -> dict[str, str]:
        res = self.shell("getprop")
        return parse_getprop(res.output) if res.status == 0 else {}


@dataclass
class Cooldown:
    """Wait between entries: a fixed pause, and/or until the hottest thermal zone is below ``max_temp_c``."""

    pause_s: float = 0.0
    max_temp_c: float | None = None
    max_wait_s: float = 300.0
    poll_s: float = 5.0

    def wait(self, read_temp_c: Callable[[], float | None], sleep: Callable[[float], None] = time.sleep) -> float:
        """Sleep as configured; returns the seconds waited. Unreadable temperatures fall back to the fixed pause."""
        waited = 0.0
        if self.pause_s > 0:
            sleep(self.pause_s)
            waited += self.pause_s
        if self.max_temp_c is None:
            return waited
        while waited < self.max_wait_s:
            temp = read_temp_c()
            if temp is None or temp <= self.max_temp_c:
                break
            sleep(self.poll_s)
            waited += self.poll_s
        return waited


def hottest_zone_c(text: str) -> float | None:
    """Max of sysfs thermal readings (millidegrees or degrees, one per line); None if nothing readable."""
    vals = []
    for tok in text.split():
        try:
            v = float(tok)
        except ValueError:
            continue
        vals.append(v / 1000.0 if abs(v) > 1000 else v)
    plausible = [v for v in vals if -40.0 < v < 150.0]
    return max(plausible) if plausible else None


class AdbBackend(Backend):
    """A phone over ADB. The runner (default: ENS's own, run by the phone's ``python3``) times each model."""

    name = "adb"

    def __init__(self, client: AdbClient, runner: RunnerSpec | None = None, remote_dir: str = DEFAULT_REMOTE_DIR,
                 taskset: str | None = None, cooldown: Cooldown | None = None, keep: bool = False,
                 run_timeout_s: float = 1800.0):
        if not remote_dir.startswith("/") or remote_dir.rstrip("/") in ("", "/data", "/data/local/tmp"):
            raise ValueError(f"remote dir {remote_dir!r}: expected a dedicated absolute directory such as "
                             f"{DEFAULT_REMOTE_DIR} (it is deleted at the end)")
        if taskset is not None and not re.fullmatch(r"(0x)?[0-9a-fA-F]+", taskset):
            raise ValueError(f"--taskset {taskset!r}: expected a hex CPU mask such as f0")
        self.client, self.runner = client, runner or make_runner("ens")
        self.remote_dir, self.taskset, self.cooldown, self.keep = remote_dir.rstrip("/"), taskset, cooldown, keep
        self.run_timeout_s = run_timeout_s
        self.runtime: str | None = None
        self.threads: int | None = None
        self._opened = False
        self._pushed: dict[str, str] = {}

    def q(self, path: str) -> str:
        return shlex.quote(path)

    def open(self) -> None:
        if self._opened:
            return
        self.client.select()
        res = self.client.shell(f"rm -rf {self.q(self.remote_dir)} && mkdir -p {self.q(self.remote_dir + '/models')}")
        if res.status != 0:
            raise AdbError(f"could not create {self.remote_dir} on {self.client.serial}: {res.output.strip()}")
        for f in self.runner.push:
            remote = f"{self.remote_dir}/{Path(f).name}"
            self.client.push(f, remote)
            self.client.shell(f"chmod 755 {self.q(remote)}")
        self._opened = True

    def close(self) -> None:
        if self._opened and not self.keep:
            try:
                self.client.shell(f"rm -rf {self.q(self.remote_dir)}", timeout_s=120)
            except AdbError:
                pass  # the device went away; nothing else to clean
        self._opened = False
        self._pushed.clear()

    def read_temp_c(self) -> float | None:
        res = self.client.shell("cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null", timeout_s=60)
        return hottest_zone_c(res.output)

    def measure(self, model_path: str | Path, input_shapes: Sequence[Sequence[int]], warmup: int, repeats: int,
                threads: int) -> RunResult:
        self.open()
        if self.cooldown is not None:
            self.cooldown.wait(self.read_temp_c, self.client.sleep)
        model_path = Path(model_path)
        remote = f"{self.remote_dir}/models/{model_path.name}"
        self.client.push(model_path, remote)
        cmd = self.runner.command(remote, input_shapes, warmup, repeats, threads, self.remote_dir, shlex.quote)
        if self.taskset:
            cmd = f"taskset {self.taskset} {cmd}"
        full = f"cd {self.q(self.remote_dir)} && {cmd}"
        try:
            res = self.client.shell(full, timeout_s=self.run_timeout_s)
        finally:
            try:
                self.client.shell(f"rm -f {self.q(remote)}", timeout_s=60)
            except AdbError:
                pass
        if res.status != 0:
            raise RunnerFailed(cmd, res.status, res.output)
        result = self.runner.parse(res.output, warmup)
        self.threads = threads
        self.runtime = result.runtime or self.runtime or self.runner.name
        return result

    def metadata(self) -> dict[str, Any]:
        self.open()
        props = self.client.getprops()
        possible = self.client.shell("cat /sys/devices/system/cpu/possible")
        cores = parse_cpu_list(possible.output) if possible.status == 0 else _int(self.client.shell("nproc").output)
        freqs = self.client.shell(
            "cat /sys/devices/system/cpu/cpu*/cpufreq/cpuinfo_max_freq 2>/dev/null").output.split()
        return {
            "backend": self.name, "serial": self.client.serial,
            "model": props.get("ro.product.model"), "manufacturer": props.get("ro.product.manufacturer"),
            "soc": props.get("ro.soc.model") or props.get("ro.board.platform") or props.get("ro.hardware"),
            "board_platform": props.get("ro.board.platform"), "abi": props.get("ro.product.cpu.abi"),
            "android": props.get("ro.build.version.release"), "sdk": props.get("ro.build.version.sdk"),
            "fingerprint": props.get("ro.build.fingerprint"),
            "cores": cores,
            "cpu_max_khz": sorted({int(f) for f in freqs if f.isdigit()}) or None,
            "threads": self.threads, "taskset": self.taskset, "runner": self.runner.name,
            "runtime_version": self.runtime, "remote_dir": self.remote_dir, "adb_retries": self.client.retried,
            "cooldown": None if self.cooldown is None else vars(self.cooldown),
        }


def _int(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None
