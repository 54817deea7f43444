"""The adb backend end to end: the real Debian adb client and server against the loopback device emulator."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from adb_emulator import AdbDeviceEmulator
from latency_lut.backends.adb import AdbBackend, AdbClient, AdbDeviceError, AdbTransientError, Cooldown
from latency_lut.backends.base import RunnerFailed
from latency_lut.runners import RunnerOutputError, make_runner

pytestmark = [pytest.mark.adb,
              pytest.mark.skipif(shutil.which("adb") is None, reason="adb not installed (apt-get install -y adb)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def adb_port():
    """A private adb server for this test; killed (and given time to exit) at teardown."""
    port = free_port()
    subprocess.run(["adb", "-P", str(port), "start-server"], capture_output=True, timeout=30, check=True)
    yield port
    subprocess.run(["adb", "-P", str(port), "kill-server"], capture_output=True, timeout=30)
    time.sleep(1.0)  # kill-server returns before the server has exited


def connect(port: int, emu: AdbDeviceEmulator, want: str = "device", wait_s: float = 10.0) -> None:
    subprocess.run(["adb", "-P", str(port), "connect", emu.serial], capture_output=True, timeout=30)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        out = subprocess.run(["adb", "-P", str(port), "devices"], capture_output=True, text=True, timeout=30).stdout
        if f"{emu.serial}\t{want}" in out:
            return
        time.sleep(0.2)
    raise AssertionError(f"{emu.serial} never became '{want}': {out}")


@pytest.fixture
def device(tmp_path: Path, adb_port: int):
    emu = AdbDeviceEmulator(tmp_path / "dev0").start()
    connect(adb_port, emu)
    yield emu
    emu.stop()


def client_for(port: int, serial: str | None = None, **kw) -> AdbClient:
    return AdbClient("adb", serial, port, backoff_s=0.05, **kw)


def test_shell_recovers_exit_status(device, adb_port):
    c = client_for(adb_port)
    assert c.select() == device.serial
    assert c.shell("echo hi").output == "hi\n" and c.shell("echo hi").status == 0
    assert c.shell("false").status == 1
    assert c.shell("exit 7").status == 7
    # what the bare client reports for the same command: the legacy shell hides the status
    raw = subprocess.run(["adb", "-P", str(adb_port), "-s", device.serial, "shell", "exit 7"], capture_output=True)
    assert raw.returncode == 0
    assert c.getprops()["ro.product.model"] == "ENS-Emu"


def test_device_selection_through_adb(tmp_path, adb_port, device):
    second = AdbDeviceEmulator(tmp_path / "dev1").start()
    try:
        connect(adb_port, second)
        with pytest.raises(AdbDeviceError, match="2 devices attached; pick one with --serial"):
            client_for(adb_port).select()
        assert client_for(adb_port, second.serial).select() == second.serial
    finally:
        second.stop()


def test_unauthorized_device_is_reported(tmp_path, adb_port):
    emu = AdbDeviceEmulator(tmp_path / "locked", mode="unauthorized").start()
    try:
        connect(adb_port, emu, want="unauthorized")
        with pytest.raises(AdbDeviceError, match="unauthorized.*Allow USB debugging"):
            client_for(adb_port).select()
    finally:
        emu.stop()


def test_no_device(adb_port):
    with pytest.raises(AdbDeviceError, match="no device attached"):
        client_for(adb_port).select()


def test_push_run_parse_cleanup(device, adb_port, add_model):
    backend = AdbBackend(client_for(adb_port), make_runner("ens"), taskset="3", cooldown=Cooldown(pause_s=0.01))
    with backend:
        result = backend.measure(add_model, [(1, 4, 8, 8), (1, 4, 8, 8)], warmup=1, repeats=4, threads=1)
        meta = backend.metadata()
        remote = device.root / "data/local/tmp/ens_lut"
        assert (remote / "device_runner.py").is_file()
        assert not (remote / "models" / add_model.name).exists()  # each model is removed after its run
    assert result.stats.n == 4 and result.stats.warmup == 1 and len(result.samples_ms) == 4
    assert result.runtime.startswith("onnxruntime")
    assert not remote.exists()  # close() removed everything it pushed
    ran = [c for c in device.commands if "device_runner.py" in c and "--model" in c]
    assert len(ran) == 1 and "taskset 3 python3" in ran[0] and "</dev/null" in ran[0]
    assert meta["model"] == "ENS-Emu" and meta["soc"] == "HostCPU" and meta["abi"] == "x86_64"
    assert meta["android"] == "14" and meta["cores"] >= 1 and meta["runtime_version"].startswith("onnxruntime")


def test_ort_perf_test_runner_pushed_with_the_models(device, adb_port, add_model, tmp_path):
    """``--runner ort_perf_test --runner-push <binary>``: the binary travels next to the runner dir and its
    summary is parsed (a stand-in script prints a recorded output and checks its arguments)."""
    from lut_testutil import FIXTURES

    fake = tmp_path / "onnxruntime_perf_test"
    fake.write_text("#!/bin/sh\n"
                    'case "$*" in *"-m times -r 7 -x 2 -I "*models/add.onnx) ;; *) echo "bad args: $*"; exit 9;; esac\n'
                    f"cat <<'EOF'\n{(FIXTURES / 'ort_perf_test_1.20.txt').read_text()}EOF\n")
    fake.chmod(0o644)  # pushed as a plain file: the backend must make it executable on the device
    with AdbBackend(client_for(adb_port), make_runner("ort_perf_test", push=[fake])) as backend:
        result = backend.measure(add_model, [(1, 4, 8, 8)] * 2, warmup=3, repeats=7, threads=2)
    assert result.stats.median == pytest.approx(23.6341) and result.stats.n == 100 and result.stats.warmup == 1


def test_runner_failure_and_unparsable_output(device, adb_port, add_model):
    with AdbBackend(client_for(adb_port), make_runner("ens")) as backend:
        with pytest.raises(RunnerFailed, match="(?s)status 2.*ens_runner error"):
            backend.measure(add_model, [(1, 4, 8, 8)], 0, 1, 1)  # the model has 2 inputs
    silent = make_runner(command="echo warming up; echo done", regex=r"time=(\d+)")
    with AdbBackend(client_for(adb_port), silent) as backend:
        with pytest.raises(RunnerOutputError, match="(?s)matched nothing.*warming up"):
            backend.measure(add_model, [(1, 4, 8, 8)], 0, 1, 1)


def test_transient_failures_are_retried(tmp_path, adb_port, add_model):
    faults = {"drop": 1, "disconnect": 1}

    def fault(cmd: str) -> str | None:
        if "--model" in cmd:
            for kind in ("drop", "disconnect"):
                if faults[kind]:
                    faults[kind] -= 1
                    return kind
        return None

    emu = AdbDeviceEmulator(tmp_path / "flaky", fault=fault).start()
    try:
        connect(adb_port, emu)
        client = client_for(adb_port, retries=4)
        with AdbBackend(client, make_runner("ens")) as backend:
            result = backend.measure(add_model, [(1, 4, 8, 8)] * 2, 0, 2, 1)
        assert result.stats.n == 2
        assert faults == {"drop": 0, "disconnect": 0}
        assert client.retried >= 2  # one per fault (a reconnect may need one more)
    finally:
        emu.stop()


def test_retries_are_bounded(tmp_path, adb_port):
    emu = AdbDeviceEmulator(tmp_path / "dead", fault=lambda cmd: "drop" if "echo" in cmd else None).start()
    try:
        connect(adb_port, emu)
        slept: list[float] = []
        client = AdbClient("adb", emu.serial, adb_port, retries=3, backoff_s=0.01, backoff_max_s=0.02,
                           sleep=slept.append)
        with pytest.raises(AdbTransientError, match="still failing after 3 retries"):
            client.shell("echo never")
        assert slept == [0.01, 0.02, 0.02]
    finally:
        emu.stop()


@pytest.mark.slow
def test_build_over_adb_survives_device_loss(tmp_path, adb_port):
    """A build whose device vanishes mid-way stops with everything measured saved; rerun resumes."""
    from latency_lut.build import BuildError, BuildOptions, build
    from latency_lut.lut import LUT

    cfg = {"dim": 4, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1, "heads": [1, 1, 1, 1], "ssm": {}}
    state = {"runs": 0, "dead": False, "armed": True}

    def fault(cmd: str) -> str | None:
        if "--model" in cmd:
            state["runs"] += 1
            if state["armed"] and state["runs"] > 6:  # the cable is pulled during the 7th run
                state["dead"], state["armed"] = True, False
        return "disconnect" if state["dead"] else None

    emu = AdbDeviceEmulator(tmp_path / "phone", fault=fault).start()
    try:
        connect(adb_port, emu)
        opts = BuildOptions(resolutions=[(16, 16)], warmup=0, repeats=2, threads=1, fidelity_archs=2,
                            fidelity_repeats=1, fidelity_warmup=0, workdir=tmp_path / "models", keep_models=True)
        out = tmp_path / "phone.json"
        with pytest.raises(BuildError, match="rerun the same command to resume"):
            build(cfg, AdbBackend(client_for(adb_port, retries=1)), out, opts, log=lambda s: None)
        assert len(LUT.load(out).entries) == 6
        state["dead"] = False  # the phone is plugged back in
        connect(adb_port, emu)
        before = state["runs"]  # the 7th run died with the connection; the resumed build reruns it
        lut = build(cfg, AdbBackend(client_for(adb_port)), out, opts, log=lambda s: None)
        assert state["runs"] - before == 21 - 6 + 2
        assert len(lut.entries) == 21 and lut.fidelity["complete"] and lut.fidelity["n"] == 2
        assert lut.device["backend"] == "adb" and lut.device["model"] == "ENS-Emu"
        assert not (emu.root / "data/local/tmp/ens_lut").exists()
    finally:
        emu.stop()
