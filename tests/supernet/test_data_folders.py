"""Folder sources: the dataset layouts users have, and every bad input failing with the file or folder named."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from supernet.data import DataConfig, build_datasets
from supernet.data.folders import find_pairs, list_images, read_image


def _write(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _photo(h=40, w=44, seed=0, top=127):
    return np.random.default_rng(seed).integers(0, top + 1, (h, w, 3), dtype=np.uint8)


def _paired_tree(root: Path, n=4, inp="input", tgt="target", h=40, w=44):
    """Targets with values 0..127 and inputs exactly twice them, so misaligned crops are detectable."""
    for i in range(n):
        clean = _photo(h, w, seed=i)
        _write(root / tgt / f"img{i}.png", clean)
        _write(root / inp / f"img{i}.png", clean * 2)
    return root


def test_paired_crops_stay_aligned_through_augmentation(tmp_path):
    _paired_tree(tmp_path / "train")
    _paired_tree(tmp_path / "val", n=2)
    cfg = DataConfig(source="paired", train_dir=str(tmp_path / "train"), val_dir=str(tmp_path / "val"),
                     patch_size=16, val_crop=0, repeat=3)
    train, val = build_datasets(cfg, "derain", seed=0)
    assert len(train) == 12 and len(val) == 2
    for i in range(len(train)):
        item = train[i]
        assert item["input"].shape == (3, 16, 16)
        torch.testing.assert_close(item["input"], 2 * item["target"], atol=1e-6, rtol=0)
    assert val[0]["input"].shape == (3, 40, 44) and val[0]["name"] == "img0"
    torch.testing.assert_close(val[1]["input"], 2 * val[1]["target"], atol=1e-6, rtol=0)


def test_val_folder_may_use_other_subdirs(tmp_path):
    _paired_tree(tmp_path / "train" / "GoPro", n=2, inp="input_crops", tgt="target_crops")
    _paired_tree(tmp_path / "test" / "GoPro", n=3)
    cfg = DataConfig(source="paired", train_dir=str(tmp_path / "train" / "GoPro"), input_subdir="input_crops",
                     target_subdir="target_crops", val_dir=str(tmp_path / "test" / "GoPro"), val_input_subdir="input",
                     val_target_subdir="target", patch_size=16, val_crop=0)
    train, val = build_datasets(cfg, "deblur", seed=0)
    assert len(train) == 2 and len(val) == 3 and val.source.pairs[0].input.parent.name == "input"
    cfg.val_input_subdir = cfg.val_target_subdir = ""
    with pytest.raises(ValueError, match=r"data.val_dir: no input images .*'input_crops'"):
        build_datasets(cfg, "deblur", seed=0)


def test_paired_without_val_dir_is_split(tmp_path):
    _paired_tree(tmp_path, n=5)
    cfg = DataConfig(source="paired", train_dir=str(tmp_path), patch_size=16, val_crop=16, val_count=2)
    train, val = build_datasets(cfg, "deblur", seed=0)
    assert len(val.source.names) == 2 and set(train.source.names).isdisjoint(val.source.names)


def test_restormer_crops_gopro_and_sidd_layouts(tmp_path):
    _paired_tree(tmp_path / "crops", n=2, inp="input_crops", tgt="target_crops")
    assert len(find_pairs(tmp_path / "crops", "input_crops", "target_crops")) == 2
    gopro = tmp_path / "GOPRO_Large" / "train"
    for scene in ("GOPR0372_07_00", "GOPR0374_11_01"):
        _paired_tree(gopro / scene, n=2, inp="blur", tgt="sharp")
        _write(gopro / scene / "blur_gamma" / "img0.png", _photo())
    pairs = find_pairs(gopro, "blur", "sharp")
    assert [p.name for p in pairs] == ["GOPR0372_07_00/img0", "GOPR0372_07_00/img1", "GOPR0374_11_01/img0",
                                       "GOPR0374_11_01/img1"]
    assert all(p.target.parent.name == "sharp" for p in pairs)
    sidd = tmp_path / "SIDD_Medium_Srgb" / "Data"
    for scene in ("0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"):
        _write(sidd / scene / "NOISY_SRGB_010.PNG", _photo())
        _write(sidd / scene / "GT_SRGB_010.PNG", _photo())
    pairs = find_pairs(sidd, "", "", "NOISY", "GT")
    assert len(pairs) == 2 and all(p.target.name == "GT_SRGB_010.PNG" for p in pairs)


def test_partner_with_other_extension(tmp_path):
    _write(tmp_path / "input" / "rain-1.jpg", _photo())
    _write(tmp_path / "target" / "rain-1.png", _photo())
    (pair,) = find_pairs(tmp_path)
    assert pair.target.name == "rain-1.png" and pair.name == "rain-1"


def test_missing_partners_are_named(tmp_path):
    _paired_tree(tmp_path, n=3)
    (tmp_path / "target" / "img1.png").unlink()
    _write(tmp_path / "target" / "orphan.png", _photo())
    with pytest.raises(ValueError) as err:
        find_pairs(tmp_path)
    msg = str(err.value)
    assert "2 image(s)" in msg and str(tmp_path / "input" / "img1.png") in msg and "orphan.png" in msg


def test_size_mismatch_names_both_files(tmp_path):
    _paired_tree(tmp_path, n=2)
    _write(tmp_path / "target" / "img1.png", _photo(h=36))
    with pytest.raises(ValueError, match="differ in size") as err:
        build_datasets(DataConfig(source="paired", train_dir=str(tmp_path), patch_size=8), "denoise", 0)
    assert str(tmp_path / "input" / "img1.png") in str(err.value) and "36x44" in str(err.value)


def test_truncated_and_garbage_files_are_named(tmp_path):
    good = _write(tmp_path / "ok.png", _photo(64, 64))
    data = good.read_bytes()
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.png"):
        read_image(truncated)
    _paired_tree(tmp_path / "set", n=3)
    _paired_tree(tmp_path / "val", n=1)
    cut = tmp_path / "set" / "input" / "img2.png"
    cut.write_bytes(cut.read_bytes()[:200])  # header intact (the pair is found), body cut
    train, _ = build_datasets(DataConfig(source="paired", train_dir=str(tmp_path / "set"),
                                         val_dir=str(tmp_path / "val"), patch_size=8), "denoise", 0)
    bad = train.source.names.index("img2")
    train[(bad + 1) % 3]
    with pytest.raises(ValueError, match=f"cannot read image {cut}"):
        train[bad]
    (tmp_path / "set" / "target" / "img0.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="img0.png"):
        build_datasets(DataConfig(source="paired", train_dir=str(tmp_path / "set")), "denoise", 0)


def test_empty_and_missing_folders_are_named(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=f"{tmp_path / 'empty'} has no images"):
        build_datasets(DataConfig(source="clean", train_dir=str(tmp_path / "empty")), "denoise", 0)
    with pytest.raises(ValueError, match="no input images") as err:
        find_pairs(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value)
    with pytest.raises(FileNotFoundError, match="data.val_dir: folder .*nowhere"):
        list_images(tmp_path / "nowhere", key="data.val_dir")


def test_small_images_are_padded_or_named(tmp_path):
    _write(tmp_path / "clean" / "a.png", _photo(40, 40))
    _write(tmp_path / "clean" / "tiny.png", _photo(12, 20, seed=1))
    cfg = DataConfig(source="clean", train_dir=str(tmp_path / "clean"), val_dir=str(tmp_path / "clean"),
                     patch_size=24, val_crop=24)
    train, val = build_datasets(cfg, "denoise", seed=0)
    tiny = train.source.names.index("tiny")
    assert train[tiny]["target"].shape == (3, 24, 24) and val[tiny]["target"].shape == (3, 24, 24)
    cfg.pad_small = False
    train, _ = build_datasets(cfg, "denoise", seed=0)
    train[1 - tiny]  # large enough: fine
    with pytest.raises(ValueError, match=r"tiny.png is 12x20, smaller than the 24x24 crop"):
        train[tiny]


def test_clean_folder_noise_sigma_range_and_grayscale(tmp_path):
    for i in range(4):
        _write(tmp_path / f"c{i}.png", np.full((32, 32, 3), 128, np.uint8))
    cfg = DataConfig(source="clean", train_dir=str(tmp_path), grayscale=True, patch_size=32, val_crop=32,
                     val_count=1, degradation={"sigma_range": [0, 50], "clip": False})
    train, val = build_datasets(cfg, "denoise", seed=0)
    stds = [float((train[i]["input"] - train[i]["target"]).std() * 255) for i in range(len(train))]
    assert train[0]["input"].shape == (1, 32, 32) and len({round(s) for s in stds}) == len(stds)
    assert all(0 <= s <= 52 for s in stds)
    assert float((val[0]["input"] - val[0]["target"]).std() * 255) == pytest.approx(25, rel=0.1)  # fixed sigma
    first, again = val[0], val[0]
    assert torch.equal(first["input"], again["input"]) and not torch.equal(first["input"], first["target"])
