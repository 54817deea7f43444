"""train.py subnet / eval / export and evaluate.py on a tiny trained supernet."""
import json
from pathlib import Path

import pytest
import torch

from supernet.arch import Arch
from supernet.config import load_config
from supernet.training import train_supernet
from supernet.training.cli import eval_main, main

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.dim=8", "model.num_blocks=[1,1,1,1]", "model.num_refinement_blocks=1", "model.heads=[1,1,1,1]",
        "data.patch_size=16", "data.batch_size=2", "data.val_count=1", "data.val_crop=32", "data.repeat=1",
        "data.embedded_images=[astronaut,coffee,chelsea,rocket]", "train.device=cpu", "train.val_archs=[]",
        "teacher.steps=2", "distill.steps=2", "supernet.steps=2"]


@pytest.fixture(scope="module")
def supernet_ckpt(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    train_supernet(load_config(ROOT / "configs" / "demo.yaml", TINY), out)
    yield out / "supernet.pt"
    torch.set_num_threads(n)


def last_json(text: str) -> dict:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])


def test_eval_any_arch_writes_csv(supernet_ckpt, capsys, tmp_path):
    assert main(["eval", "--checkpoint", str(supernet_ckpt), "--arch", "SSTTSSTT", "--csv",
                 str(tmp_path / "e.csv")]) == 0
    r = last_json(capsys.readouterr().out)
    assert r["arch"] == "SSTTSSTT" and r["n"] >= 1 and r["psnr"] > 0
    assert (tmp_path / "e.csv").read_text().splitlines()[-1].startswith("mean,")
    assert eval_main(["--checkpoint", str(supernet_ckpt), "--tile", "16", "--overlap", "8"]) == 0
    assert last_json(capsys.readouterr().out)["arch"] == "TTTTTTTT"


def test_subnet_from_chosen_json_then_eval_and_export(supernet_ckpt, tmp_path, capsys):
    chosen = tmp_path / "chosen.json"
    chosen.write_text(json.dumps({"knee": {"arch": "TTSSTTSS", "psnr": 0, "latency_ms": 1}}))
    out = tmp_path / "sub"
    assert main(["subnet", "--arch", str(chosen), "--from", str(supernet_ckpt), "--steps", "2", "--out",
                 str(out), "--set", "train.log_every=1"]) == 0
    assert Arch.load(out / "arch.json") == Arch.parse("TTSSTTSS")
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "subnet.pt")]) == 0
    assert last_json(capsys.readouterr().out)["arch"] == "subnet"
    assert main(["eval", "--checkpoint", str(out / "subnet.pt"), "--arch", "TTTTTTTT"]) == 2
    assert "cannot run arch TTTTTTTT" in capsys.readouterr().err
    onnx_path = tmp_path / "sub.onnx"
    assert main(["export", "--checkpoint", str(out / "subnet.pt"), "--size", "32", "--out", str(onnx_path)]) == 0
    assert onnx_path.stat().st_size > 0
