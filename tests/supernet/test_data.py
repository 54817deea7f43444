"""The embedded source end to end: item format, determinism, split, progressive patches, config checks."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from supernet.data import EMBEDDED_IMAGES, DataConfig, build_datasets
from supernet.data.sources import split_indices

SMALL = ["astronaut", "camera", "coins", "chelsea", "brick"]  # quick to decode


def _cfg(**kw):
    kw.setdefault("embedded_images", SMALL)
    kw.setdefault("patch_size", 32)
    kw.setdefault("val_crop", 48)
    return DataConfig(**kw)


def _items(ds, indices=None):
    return [ds[i] for i in (range(len(ds)) if indices is None else indices)]


def _same(a, b):
    return all(torch.equal(x["input"], y["input"]) and torch.equal(x["target"], y["target"]) for x, y in zip(a, b))


@pytest.mark.parametrize("task", ["denoise", "derain", "deblur"])
def test_items_are_crops_in_unit_range(task):
    train, val = build_datasets(_cfg(repeat=2), task, seed=0)
    assert len(train) == 2 * len(train.source.names) and len(val) == len(val.source.names)
    item = train[0]
    assert set(item) == {"input", "target", "name"} and item["name"] in SMALL
    for key in ("input", "target"):
        assert item[key].dtype == torch.float32 and item[key].shape == (3, 32, 32)
        assert 0.0 <= item[key].min() and item[key].max() <= 1.0
    assert not torch.equal(item["input"], item["target"])
    v = val[0]
    assert v["input"].shape == (3, 48, 48) and not torch.equal(v["input"], v["target"])


def test_same_seed_same_items_any_order_and_worker_count():
    train, _ = build_datasets(_cfg(), "denoise", seed=5)
    again, _ = build_datasets(_cfg(), "denoise", seed=5)
    forward = _items(train)
    assert _same(forward, list(reversed(_items(again, reversed(range(len(again)))))))
    loader = DataLoader(again, batch_size=2, num_workers=2, shuffle=False)
    batches = list(loader)
    stacked = torch.cat([b["input"] for b in batches])
    assert torch.equal(stacked, torch.stack([x["input"] for x in forward]))


def test_seed_and_epoch_change_crops_and_noise():
    a, _ = build_datasets(_cfg(), "denoise", seed=1)
    b, _ = build_datasets(_cfg(), "denoise", seed=2)
    first = _items(a)
    assert not any(torch.equal(x["target"], y["target"]) for x, y in zip(first, _items(b)))
    a.set_epoch(1)
    assert not any(torch.equal(x["target"], y["target"]) for x, y in zip(first, _items(a)))
    a.set_epoch(0)
    assert _same(first, _items(a))


def test_validation_is_fixed_and_independent_of_training_seed():
    _, v1 = build_datasets(_cfg(val_crops=4), "derain", seed=1)
    _, v2 = build_datasets(_cfg(val_crops=4), "derain", seed=99)
    items = _items(v1)
    assert _same(items, _items(v2)) and _same(items, _items(v1))
    assert [x["name"] for x in items][:2] == [f"{v1.source.names[0]}#0", f"{v1.source.names[0]}#1"]
    assert len({x["target"].sum().item() for x in items[:4]}) == 4  # four different places in one image
    _, v3 = build_datasets(_cfg(val_crops=4, split_seed=1, val_count=2), "derain", seed=1)
    assert v3.source.names != v1.source.names or not _same(items, _items(v3))


def test_split_is_disjoint_deterministic_and_sized():
    train, val = build_datasets(_cfg(val_count=2), "denoise", seed=0)
    assert set(train.source.names).isdisjoint(val.source.names)
    assert sorted(train.source.names + val.source.names) == sorted(SMALL) and len(val.source.names) == 2
    assert split_indices(10, 0, 0.3, 0) == split_indices(10, 0, 0.3, 0)
    tr, va = split_indices(10, 0, 0.3, 0)
    assert len(va) == 3 and sorted(tr + va) == list(range(10))
    assert split_indices(10, 0, 0.3, 1) != (tr, va)
    with pytest.raises(ValueError, match="leaves none for training"):
        split_indices(3, 3, 0.2, 0)
    full, _ = build_datasets(DataConfig(patch_size=8, val_crop=16), "denoise", seed=0)
    assert len(full.source.names) + len(_.source.names) == len(EMBEDDED_IMAGES)


def test_patch_size_and_progressive_schedule():
    cfg = _cfg(progressive=[[0, 16, 8], [100, 24, 4], [300, 40, 2]])
    train, _ = build_datasets(cfg, "deblur", seed=0)
    assert train[0]["input"].shape[-1] == 16
    assert [cfg.stage_at(s) for s in (0, 99, 100, 299, 300, 10_000)] == [(16, 8), (16, 8), (24, 4), (24, 4),
                                                                          (40, 2), (40, 2)]
    late = _cfg(progressive=[[50, 24, 2]])
    assert late.stage_at(49) == (32, 4) and late.stage_at(50) == (24, 2)
    train.set_patch_size(40)
    assert train[0]["input"].shape == train[0]["target"].shape == (3, 40, 40)


def test_grayscale_and_no_degradation():
    train, val = build_datasets(_cfg(grayscale=True), "denoise", seed=0)
    assert train[0]["input"].shape == (1, 32, 32) and val[0]["target"].shape == (1, 48, 48)
    cfg = _cfg()
    cfg.degradation.kind = "none"
    train, _ = build_datasets(cfg, "denoise", seed=0)
    item = train[0]
    assert torch.equal(item["input"], item["target"])


def test_whole_image_validation_and_padding_of_large_crops():
    _, val = build_datasets(_cfg(val_crop=0, val_count=1, embedded_images=["coins", "camera"]), "denoise", 0)
    assert val[0]["input"].shape[-2:] in {(303, 384), (512, 512)}
    _, big = build_datasets(_cfg(val_crop=400, embedded_images=["coins", "camera"], val_count=1,
                                 split_seed=3), "denoise", 0)
    assert big[0]["target"].shape == (3, 400, 400)


def test_config_checks_name_the_key():
    with pytest.raises(ValueError, match="data.source"):
        DataConfig(source="web")
    with pytest.raises(ValueError, match=r"data.progressive\[1\]"):
        DataConfig(progressive=[[0, 64, 8], [0, 128, 4]])
    with pytest.raises(ValueError, match="data.train_dir"):
        DataConfig(source="clean")
    with pytest.raises(ValueError, match="data.degradation: unknown keys"):
        DataConfig(degradation={"sigmma": 3})
    assert DataConfig(degradation={"sigma": 3}).degradation.sigma == 3
    with pytest.raises(ValueError, match=r"data.degradation.blur_angle"):
        DataConfig(degradation={"blur_angle": [30, -30]})
    with pytest.raises(ValueError, match="data.embedded_images"):
        build_datasets(DataConfig(embedded_images=["astronaut", "lena"]), "denoise", 0)
    with pytest.raises(ValueError, match="unknown task"):
        build_datasets(_cfg(), "dehaze", 0)


def test_embedded_images_all_load_offline():
    from supernet.data.sources import EmbeddedImages

    images = EmbeddedImages(list(EMBEDDED_IMAGES), grayscale=False)
    for i, name in enumerate(images.names):
        img = images.load(i)
        assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 256, name
        assert img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1 and img.std() > 0.02, name
