import json
import random

import pytest

from supernet.arch import STAGES, Arch, all_stage_archs, slot_names

DEFAULT_SIZES = (4, 6, 6, 8, 6, 6, 4, 4)


def test_block_string_of_default_sizes():
    arch = Arch.uniform(DEFAULT_SIZES, "T", granularity="block")
    assert str(arch) == "TTTT-TTTTTT-TTTTTT-TTTTTTTT-TTTTTT-TTTTTT-TTTT-TTTT"
    assert Arch.parse(str(arch)) == arch


def test_stage_string_round_trip_and_json():
    arch = Arch.parse("TSTSSTTS")
    assert arch.granularity == "stage" and str(arch) == "TSTSSTTS"
    assert Arch.from_json(json.dumps(arch.to_json())) == arch


def test_save_load(tmp_path):
    arch = Arch.random(DEFAULT_SIZES, 3, granularity="block")
    arch.save(tmp_path / "arch.json", psnr=30.0)
    assert Arch.load(tmp_path / "arch.json") == arch
    (tmp_path / "chosen.json").write_text(json.dumps({"knee": {"arch": "TTSSTTSS", "psnr": 1.0}}))
    assert str(Arch.load(tmp_path / "chosen.json")) == "TTSSTTSS"
    assert str(Arch.load("SSSSSSSS")) == "SSSSSSSS"


def test_seeded_sampler_is_deterministic_and_varied():
    a = [str(Arch.random(DEFAULT_SIZES, random.Random(7), "block")) for _ in range(2)]
    assert a[0] == a[1]
    many = {str(Arch.random(DEFAULT_SIZES, s)) for s in range(50)}
    assert len(many) > 20


def test_genome_round_trip_and_expansion():
    arch = Arch.parse("TSTSSTTS")
    assert Arch.from_genome(arch.genome(), DEFAULT_SIZES) == arch
    ops = arch.block_ops(DEFAULT_SIZES)
    assert [len(s) for s in ops] == list(DEFAULT_SIZES)
    assert ops[1] == ["ssm"] * 6
    assert arch.to_block(DEFAULT_SIZES).count("T") == 4 + 6 + 6 + 4
    assert len(all_stage_archs()) == 256 and len({str(a) for a in all_stage_archs()}) == 256
    assert slot_names(DEFAULT_SIZES)[0] == "enc1.0" and len(slot_names(DEFAULT_SIZES)) == sum(DEFAULT_SIZES)


@pytest.mark.parametrize("text, match", [
    ("TTXTTTTT", "letters"), ("TTT", "expected 8"), ("TTTT-TT", "8 stages"), ("TT-TT-TT-TT-TT-TT-TT-", "genes"),
])
def test_bad_strings_name_what_was_expected(text, match):
    with pytest.raises(ValueError, match=match):
        Arch.parse(text)


def test_wrong_gene_count_for_network():
    with pytest.raises(ValueError, match="genes per stage"):
        Arch.parse("T-T-T-T-T-T-T-T", stage_sizes=DEFAULT_SIZES)
    with pytest.raises(ValueError, match="needs 8 genes"):
        Arch.from_genome([1, 0, 1], DEFAULT_SIZES)
    assert len(STAGES) == 8
