"""Config loading: strict keys and types named by their full path, overrides, shipped configs."""
from pathlib import Path

import pytest

from supernet.config import Config, ConfigError, config_diff, load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(CONFIG_DIR)) for p in CONFIGS])
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert len(cfg.model.num_blocks) == 4 and len(cfg.model.heads) == 4


def test_shipped_configs_exist():
    assert {p.stem for p in CONFIGS} >= {"demo", "denoise", "derain", "deblur"}


def test_unknown_key_names_full_path(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        load_config(write(tmp_path, "train:\n  lrr: 0.1\n"))
    with pytest.raises(ConfigError, match=r"data\.degradation\.sigmaa"):
        load_config(write(tmp_path, "data:\n  degradation:\n    sigmaa: 3\n"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) modle"):
        load_config(write(tmp_path, "modle: {}\n"))


@pytest.mark.parametrize("text, key, expected", [
    ("train:\n  grad_clip: abc\n", "train.grad_clip", "number"),
    ("model:\n  num_blocks: [1, x, 1, 1]\n", r"model.num_blocks\[1\]", "int"),
    ("teacher:\n  enabled: 1\n", "teacher.enabled", "true/false"),
    ("seed: 1.5\n", "seed", "int"),
    ("model:\n  ssm: [1]\n", "model.ssm", "mapping"),
    ("supernet: 3\n", "supernet", "mapping"),
])
def test_wrong_type_names_key_and_type(tmp_path, text, key, expected):
    with pytest.raises(ConfigError, match=rf"{key}.*{expected}"):
        load_config(write(tmp_path, text))


def test_yaml_exponent_floats_are_numbers(tmp_path):
    # PyYAML reads 3e-4 as a string; float fields accept it as the number it is.
    cfg = load_config(write(tmp_path, "teacher:\n  lr: 3e-4\n"))
    assert cfg.teacher.lr == pytest.approx(3e-4)


def test_overrides_apply_and_type_check(tmp_path):
    path = write(tmp_path, "train:\n  grad_clip: 0.1\n")
    cfg = load_config(path, ["train.grad_clip=0.5", "supernet.sandwich=true", "model.num_blocks=[1,1,1,2]",
                             "data.degradation.sigma=15", "name=x"])
    assert cfg.train.grad_clip == 0.5 and cfg.supernet.sandwich is True
    assert cfg.model.num_blocks == [1, 1, 1, 2] and cfg.data.degradation.sigma == 15.0 and cfg.name == "x"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, ["train.grad_clip"])
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        load_config(path, ["train.lrr=1"])
    with pytest.raises(ConfigError, match=r"train\.grad_clip.*number"):
        load_config(path, ["train.grad_clip=[1]"])
    with pytest.raises(ConfigError, match="is a value, not a section"):
        load_config(path, ["train.grad_clip.x=1"])


def test_data_section_checks_surface_with_key(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.patch_size"):
        load_config(write(tmp_path, "data:\n  patch_size: 0\n"))


def test_to_dict_round_trip_and_diff():
    cfg = load_config(None, ["teacher.lr=0.01"])
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
    other = load_config(None, ["teacher.lr=0.02", "model.dim=8"])
    diff = config_diff(cfg.to_dict(), other.to_dict())
    assert any(d.startswith("teacher.lr") for d in diff) and any(d.startswith("model.dim") for d in diff)
    assert len(diff) == 2


def test_base_merges_sections_and_replaces_values(tmp_path):
    (tmp_path / "parent.yaml").write_text("name: parent\nmodel:\n  dim: 8\n  num_blocks: [1, 1, 1, 1]\n"
                                          "train:\n  grad_clip: 0.5\n")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("base: ../parent.yaml\nname: child\nmodel:\n  num_blocks: [2, 2, 2, 2]\n")
    cfg = load_config(child, ["train.grad_clip=0.1"])
    assert cfg.name == "child"
    assert cfg.model.dim == 8 and cfg.model.num_blocks == [2, 2, 2, 2]  # sibling keys kept, list replaced
    assert cfg.train.grad_clip == 0.1  # overrides apply after the merge


def test_base_chain_and_errors_name_the_files(tmp_path):
    (tmp_path / "a.yaml").write_text("model:\n  dim: 8\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nmodel:\n  dimm: 4\n")
    (tmp_path / "c.yaml").write_text("base: b.yaml\n")
    with pytest.raises(ConfigError, match=r"c\.yaml \(on base .*b\.yaml, .*a\.yaml\).*model\.dimm"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml \(the base: of .*d\.yaml\)"):
        load_config(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("base: f.yaml\n")
    (tmp_path / "f.yaml").write_text("base: e.yaml\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "e.yaml")
    (tmp_path / "g.yaml").write_text("base: [a.yaml]\n")
    with pytest.raises(ConfigError, match=r"g\.yaml: base: must be the path"):
        load_config(tmp_path / "g.yaml")


def test_deep_proxies_differ_from_their_base_only_in_depth_and_name():
    for task in ("denoise", "deblur"):
        shallow = load_config(CONFIG_DIR / "proxy" / f"{task}.yaml").to_dict()
        deep = load_config(CONFIG_DIR / "proxy" / f"{task}-deep.yaml").to_dict()
        assert config_diff(shallow, deep) == [
            "model.num_blocks: [1, 1, 1, 2] -> [2, 2, 2, 4]", "model.num_refinement_blocks: 1 -> 2",
            f"name: 'proxy-{task}' -> 'proxy-{task}-deep'"]


def test_fast_proxies_equal_their_base_with_the_recorded_ssm_settings():
    """configs/proxy/<task>-fast.yaml is the --set form of the pooled-scan records (README)."""
    sets = ["model.ssm.norm=none", "model.ssm.mlp_ratio=2", "model.ssm.mlp_stages=[enc2,enc3,latent,dec3,dec2]",
            "model.ssm.stage_options={enc1: {scan_pool: 2}, dec1: {scan_pool: 2}, refinement: {scan_pool: 2}}"]
    for task in ("denoise", "derain", "deblur"):
        fast = load_config(CONFIG_DIR / "proxy" / f"{task}-fast.yaml").to_dict()
        with_sets = load_config(CONFIG_DIR / "proxy" / f"{task}.yaml", sets).to_dict()
        assert config_diff(with_sets, fast) == [f"name: 'proxy-{task}' -> 'proxy-{task}-fast'"]


def test_with_validation_set_changes_only_the_validation_crops():
    from supernet.config import with_validation_set

    cfg = load_config(CONFIG_DIR / "proxy" / "denoise.yaml", ["data.val_crop=128", "data.val_crops=2"])
    whole = with_validation_set(cfg, ["data.val_crop=0", "data.val_crops=1"])
    assert (whole.data.val_crop, whole.data.val_crops) == (0, 1)
    assert (cfg.data.val_crop, cfg.data.val_crops) == (128, 2)  # the given config is left alone
    assert whole.data.val_count == cfg.data.val_count and whole.model == cfg.model
    assert with_validation_set(cfg, []) is cfg
    with pytest.raises(ConfigError, match=r"--val-set 'data.val_count=6': only data.val_crop, data.val_crops"):
        with_validation_set(cfg, ["data.val_count=6"], option="--val-set")
    with pytest.raises(ConfigError, match=r"--eval-set data.val_crop=0: .*val_crops"):
        with_validation_set(cfg, ["data.val_crop=0"])  # whole images take one crop


def test_gated_derain_proxy_is_the_fast_one_with_the_recorded_full_resolution_stages():
    """configs/proxy/derain-gated.yaml is derain-fast.yaml with the stage options of the record's
    'pool 4, gate at level 1' variant (README)."""
    sets = ["model.ssm.stage_options={enc1: {scan_pool: 4, gate: true}, dec1: {scan_pool: 4, gate: true}, "
            "refinement: {scan_pool: 4, gate: true}}"]
    gated = load_config(CONFIG_DIR / "proxy" / "derain-gated.yaml").to_dict()
    with_sets = load_config(CONFIG_DIR / "proxy" / "derain-fast.yaml", sets).to_dict()
    assert config_diff(with_sets, gated) == ["name: 'proxy-derain-fast' -> 'proxy-derain-gated'"]
    assert gated["model"]["ssm"]["stage_options"]["enc1"] == {"gate": True, "scan_pool": 4}


def test_conv_gate_denoise_proxy_is_the_fast_one_with_conv_gate_at_levels_2_to_4():
    """configs/proxy/denoise-conv-gate.yaml is denoise-fast.yaml with the record's 'conv gate at levels 2-4' variant:
    every stage's SSM block has conv_gate except the pooled full-resolution ones."""
    from supernet.ssm import SSMOptions

    sets = ["model.ssm.conv_gate=true",
            "model.ssm.stage_options={enc1: {scan_pool: 2, conv_gate: false}, dec1: {scan_pool: 2, conv_gate: false}, "
            "refinement: {scan_pool: 2, conv_gate: false}}"]
    cfg = load_config(CONFIG_DIR / "proxy" / "denoise-conv-gate.yaml")
    with_sets = load_config(CONFIG_DIR / "proxy" / "denoise-fast.yaml", sets).to_dict()
    assert config_diff(with_sets, cfg.to_dict()) == ["name: 'proxy-denoise-fast' -> 'proxy-denoise-conv-gate'"]
    opts = SSMOptions.from_any(cfg.to_dict()["model"]["ssm"])
    gated = {stage: opts.for_stage(stage).conv_gate for stage in ("enc1", "enc2", "enc3", "latent", "dec3", "dec2",
                                                                  "dec1", "refinement")}
    assert gated == {"enc1": False, "enc2": True, "enc3": True, "latent": True, "dec3": True, "dec2": True,
                     "dec1": False, "refinement": False}
