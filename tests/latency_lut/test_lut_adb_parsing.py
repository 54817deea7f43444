"""ADB backend logic that needs no adb: device listing and choice, exit-status recovery, props, cooldown."""
from __future__ import annotations

import pytest

from latency_lut.backends.adb import (AdbDeviceError, Cooldown, choose_device, hottest_zone_c, parse_cpu_list,
                                      parse_devices, parse_getprop, split_status)
from lut_testutil import fixture_text


def test_parse_devices_one():
    rows = parse_devices(fixture_text("adb_devices_one.txt"))
    assert len(rows) == 1
    assert rows[0].serial == "2A121FDH2001Y3" and rows[0].state == "device"
    assert rows[0].info["model"] == "Pixel_7" and rows[0].info["transport_id"] == "3"
    assert choose_device(rows) == "2A121FDH2001Y3"


def test_choose_device_none():
    rows = parse_devices(fixture_text("adb_devices_none.txt"))
    assert rows == []
    with pytest.raises(AdbDeviceError, match="no device attached"):
        choose_device(rows)


def test_choose_device_several_needs_serial():
    rows = parse_devices(fixture_text("adb_devices_several.txt"))
    assert [r.state for r in rows] == ["device", "device", "offline"]
    with pytest.raises(AdbDeviceError, match=r"2 devices attached; pick one with --serial"):
        choose_device(rows)
    assert choose_device(rows, "R5CT21ABCDE") == "R5CT21ABCDE"
    with pytest.raises(AdbDeviceError, match="is 'offline'"):
        choose_device(rows, "192.168.1.20:5555")
    with pytest.raises(AdbDeviceError, match="--serial nope: no such device"):
        choose_device(rows, "nope")


def test_choose_device_unauthorized_offline_nopermissions():
    with pytest.raises(AdbDeviceError, match="unauthorized.*Allow USB debugging"):
        choose_device(parse_devices(fixture_text("adb_devices_unauthorized.txt")))
    with pytest.raises(AdbDeviceError, match="offline.*reconnect"):
        choose_device(parse_devices(fixture_text("adb_devices_offline.txt")))
    rows = parse_devices(fixture_text("adb_devices_nopermissions.txt"))
    assert rows[0].state == "no permissions"
    with pytest.raises(AdbDeviceError, match="no permissions.*udev"):
        choose_device(rows)


def test_split_status_recovers_exit_code():
    assert split_status("hello\n__rc=3\n") .status == 3
    res = split_status("line1\r\nline2\r\n__rc=0\r\n")
    assert res.status == 0 and res.output == "line1\nline2\n"
    assert split_status("partial output, stream cut") is None
    assert split_status("") is None
    assert split_status("x__rc=1\n") is None  # only a marker at a line start counts


def test_parse_getprop_and_cpu_list():
    props = parse_getprop("[ro.product.model]: [Pixel 7]\n[ro.board.platform]: [gs201]\n[empty]: []\n")
    assert props == {"ro.product.model": "Pixel 7", "ro.board.platform": "gs201", "empty": ""}
    assert parse_cpu_list("0-7\n") == 8 and parse_cpu_list("0-3,6") == 5 and parse_cpu_list("0") == 1


def test_cooldown_waits_for_temperature():
    slept = []
    temps = iter([52.0, 47.0, 39.0, 30.0])
    cd = Cooldown(pause_s=1.0, max_temp_c=40.0, poll_s=2.0)
    waited = cd.wait(lambda: next(temps), slept.append)
    assert slept == [1.0, 2.0, 2.0] and waited == 5.0
    # unreadable sysfs: only the fixed pause
    slept.clear()
    assert Cooldown(pause_s=0.5, max_temp_c=40.0).wait(lambda: None, slept.append) == 0.5
    # bounded: never waits past max_wait_s
    slept.clear()
    Cooldown(max_temp_c=10.0, max_wait_s=6.0, poll_s=2.0).wait(lambda: 80.0, slept.append)
    assert sum(slept) == 6.0


def test_hottest_zone_units():
    assert hottest_zone_c("41000\n38500\n") == 41.0
    assert hottest_zone_c("45\n") == 45.0
    assert hottest_zone_c("cat: no such file\n") is None
    assert hottest_zone_c("-273000\n") is None
