"""Entry enumeration and canonical keys."""
from __future__ import annotations

import pytest

from latency_lut.enumerate import Layout, padded, parse_resolution
from latency_lut.keys import block_key

DEFAULT = {"dim": 48, "num_blocks": [4, 6, 6, 8], "num_refinement_blocks": 4, "heads": [1, 2, 4, 8],
           "ffn_expansion_factor": 2.66, "bias": False, "LayerNorm_type": "WithBias", "ssm": {}}


def test_keys_are_canonical():
    k = block_key("transformer", DEFAULT, 48, 1, (256, 256), "fp32", "ort", "enc1")
    assert k == "transformer-c48-in256x256-h1-ffn2.66-bias0-lnWithBias-fp32-ort"
    s = block_key("ssm", {**DEFAULT, "ssm": {"d_state": 4}}, 96, 2, (128, 128), "fp32", "ort", "enc2")
    assert s.startswith("ssm-c96-in128x128-n4-") and s.endswith("-fp32-ort")
    with pytest.raises(ValueError, match="no LUT key format for block op 'conv'"):
        block_key("conv", DEFAULT, 48, 1, (8, 8), "fp32", "ort", "enc1")


def test_mlp_stages_key_the_mlp_only_where_it_is():
    """With ``ssm.mlp_stages`` a stage without the MLP shares the plain block's key (one LUT entry), and dec1 and the
    refinement, otherwise one shape, split when only one of them has the MLP."""
    cfg = {**DEFAULT, "ssm": {"mlp_ratio": 2, "mlp_stages": ["latent", "refinement"]}}
    plain = block_key("ssm", DEFAULT, 96, 1, (256, 256), "fp32", "ort", "dec1")
    assert block_key("ssm", cfg, 96, 1, (256, 256), "fp32", "ort", "dec1") == plain
    with_mlp = block_key("ssm", cfg, 96, 1, (256, 256), "fp32", "ort", "refinement")
    assert with_mlp == plain.replace("-m0-", "-m2-")
    keys = {e.key for e in Layout.from_config(cfg).all_entries([(256, 256)], "fp32", "ort")}
    plain_keys = {e.key for e in Layout.from_config(DEFAULT).all_entries([(256, 256)], "fp32", "ort")}
    # latent's SSM key changes (a shape of its own anyway); the refinement's SSM becomes one new entry
    assert len(keys) == len(plain_keys) + 1
    assert len(keys - plain_keys) == 2 and all("-m2-" in k for k in keys - plain_keys)


def test_stage_options_key_each_stage_by_its_own_options():
    """A stage overridden by ``ssm.stage_options`` gets its own key; the other stages keep the plain block's."""
    cfg = {**DEFAULT, "ssm": {"stage_options": {"refinement": {"scan_pool": 2}}}}
    plain = block_key("ssm", DEFAULT, 96, 1, (256, 256), "fp32", "ort", "dec1")
    assert block_key("ssm", cfg, 96, 1, (256, 256), "fp32", "ort", "dec1") == plain
    assert block_key("ssm", cfg, 96, 1, (256, 256), "fp32", "ort", "refinement") == plain.replace("-p1-", "-p2-")
    keys = {e.key for e in Layout.from_config(cfg).all_entries([(256, 256)], "fp32", "ort")}
    plain_keys = {e.key for e in Layout.from_config(DEFAULT).all_entries([(256, 256)], "fp32", "ort")}
    assert keys - plain_keys == {plain.replace("-p1-", "-p2-")}


def test_default_config_entries_measured_once():
    layout = Layout.from_config(DEFAULT)
    entries = layout.all_entries([(256, 256)], "fp32", "ort")
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys))
    # stages sharing channels, heads and size share a key (enc2/dec2, enc3/dec3, dec1/refinement):
    # 5 distinct block shapes x 2 ops + 11 fixed parts
    assert len(entries) == 5 * 2 + 11
    assert sum(e.is_block for e in entries) == 10
    by_key = {e.key: e for e in entries}
    assert by_key["transformer-c384-in32x32-h8-ffn2.66-bias0-lnWithBias-fp32-ort"].input_shapes == ((1, 384, 32, 32),)
    assert by_key["reduce-c192+192to192-in64x64-bias0-fp32-ort"].input_shapes == ((1, 192, 64, 64),) * 2
    assert by_key["output-c96to3-in256x256-bias0-fp32-ort"].input_shapes == ((1, 96, 256, 256), (1, 3, 256, 256))
    # two resolutions: nothing shared between them
    assert len(layout.all_entries([(256, 256), (512, 768)], "fp32", "ort")) == 2 * len(entries)


def test_arch_entries_follow_the_path():
    layout = Layout.from_config(DEFAULT)
    path = layout.arch_entries("TSTSTSTS", (256, 256), "fp32", "ort")
    blocks = [e for e in path if e.is_block]
    assert len(blocks) == 4 + 6 + 6 + 8 + 6 + 6 + 4 + 4
    assert [e.op for e in blocks[:5]] == ["transformer"] * 4 + ["ssm"]
    assert {e.stage for e in blocks if e.op == "ssm"} == {"enc2", "latent", "dec2", "refinement"}


def test_resolutions():
    assert parse_resolution("256") == (256, 256) and parse_resolution("512x768") == (512, 768)
    assert padded((500, 750)) == (504, 752)
    with pytest.raises(ValueError, match="--resolution 'big'"):
        parse_resolution("big")
    with pytest.raises(ValueError, match="dual_pixel_task"):
        Layout.from_config({**DEFAULT, "dual_pixel_task": True})
