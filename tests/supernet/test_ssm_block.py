import pytest
import torch
from conftest import perturb_ssm

from supernet.ssm import SSMBlock, SSMOptions

VARIANTS = [
    {},
    {"directions": ["hw", "wh_rev"], "headdim": 4, "d_state": 8},
    {"scan_pool": 2, "gate": True, "mlp_ratio": 1.0, "d_skip": True},
    {"scan_pool": 2, "norm": "none", "mlp_ratio": 2.0},
    {"scan_pool": 3, "d_skip": True, "directions": ["hw", "wh"]},
    {"conv_first": False, "expand": 2.0, "directions": ["hw_rev", "wh"]},
    {"norm": "none"},
    {"norm": "none", "mlp_ratio": 2.0, "mlp_norm": "none"},
    {"channel_attention": True, "headdim": 8, "norm": "none"},
    {"channel_attention": True, "scan_pool": 2, "gate": True, "expand": 2.0},
    {"mlp_ratio": 2.0, "mlp_conv": True, "norm": "none", "scan_pool": 2},
    {"bc_bound": 0.5, "norm": "none", "directions": ["hw", "wh"], "headdim": 8},
]


@pytest.mark.parametrize("opts", VARIANTS)
@pytest.mark.parametrize("hw", [(8, 8), (13, 11), (1, 5)])
def test_shape_preserved_and_scan_paths_agree(opts, hw):
    torch.manual_seed(0)
    block = perturb_ssm(SSMBlock(16, **opts)).double()
    x = torch.randn(2, 16, *hw, dtype=torch.float64, requires_grad=True)
    y = block(x)
    assert y.shape == x.shape
    ref = SSMBlock(16, **{**opts, "scan_impl": "reference"}).double()
    ref.load_state_dict(block.state_dict())
    y_ref = ref(x)
    assert torch.allclose(y, y_ref, atol=1e-9)
    assert (y - x).abs().max() > 1e-3  # the mixer contributes
    g1, = torch.autograd.grad(y.square().sum(), x)
    g2, = torch.autograd.grad(y_ref.square().sum(), x)
    assert torch.allclose(g1, g2, atol=1e-8)


def test_channels_last_input_gives_same_result():
    torch.manual_seed(0)
    block = perturb_ssm(SSMBlock(8))
    x = torch.randn(1, 8, 12, 12)
    assert torch.allclose(block(x), block(x.contiguous(memory_format=torch.channels_last)), atol=1e-6)


def test_bad_input_and_options():
    block = SSMBlock(8)
    with pytest.raises(ValueError, match=r"expects \(B, 8, H, W\)"):
        block(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"expects \(B, 8, H, W\)"):
        block(torch.randn(8, 8, 8))
    with pytest.raises(ValueError, match="unknown SSM option"):
        SSMBlock(8, d_sate=4)
    with pytest.raises(ValueError, match="directions"):
        SSMOptions.from_any({"directions": ["diagonal"]})
    with pytest.raises(ValueError, match="divisible by headdim"):
        SSMBlock(8, headdim=3)
    with pytest.raises(ValueError, match=r"ssm.norm must be one of \['layer', 'none'\], got 'rms'"):
        SSMBlock(8, norm="rms")


def test_norm_none_drops_the_layernorm_and_keys_apart():
    plain, free = SSMBlock(8), SSMBlock(8, norm="none")
    assert {k for k in plain.state_dict() if k.startswith("norm.")} == {"norm.weight", "norm.bias"}
    assert not any(k.startswith("norm.") for k in free.state_dict())
    assert SSMOptions().key() == SSMOptions(norm="layer").key()  # existing LUT keys unchanged
    assert SSMOptions(norm="none").key() == SSMOptions().key() + "-nrmnone"
    # the norm is really gone from the computation: the same weights give another residual branch
    torch.manual_seed(0)
    a, b = perturb_ssm(SSMBlock(8)), perturb_ssm(SSMBlock(8, norm="none"))
    b.load_state_dict({k: v for k, v in a.state_dict().items() if not k.startswith("norm.")})
    x = torch.randn(1, 8, 6, 6)
    assert not torch.allclose(a(x) - x, b(x) - x, atol=1e-4)


def test_ssm_block_is_much_smaller_than_transformer_block():
    from supernet.blocks import TransformerBlock
    for c in (48, 96, 192, 384):
        n_ssm = sum(p.numel() for p in SSMBlock(c).parameters())
        n_t = sum(p.numel() for p in TransformerBlock(c, 1, 2.66, False, "WithBias").parameters())
        assert n_ssm < 0.25 * n_t


def test_block_starts_as_identity():
    block = SSMBlock(8, d_conv=5)
    x = torch.randn(2, 8, 9, 7)
    assert torch.allclose(block(x), x, atol=1e-6)


def test_mlp_norm_none_drops_the_mlp_layernorm_and_keys_apart():
    with_norm, free = SSMBlock(8, mlp_ratio=2.0), SSMBlock(8, mlp_ratio=2.0, mlp_norm="none")
    assert {k for k in with_norm.state_dict() if k.startswith("norm2.")} == {"norm2.weight", "norm2.bias"}
    assert not any(k.startswith("norm2.") for k in free.state_dict())
    assert with_norm.opts.key() != free.opts.key()
    # without an MLP the option changes nothing, so the LUT key stays the plain block's
    assert SSMOptions(mlp_norm="none").key() == SSMOptions().key()
    with pytest.raises(ValueError, match=r"ssm.mlp_norm must be one of \['layer', 'none'\], got 'rms'"):
        SSMBlock(8, mlp_norm="rms")


def test_mlp_stages_put_the_mlp_only_in_the_named_stages():
    from supernet.unet import HybridUNet, RestorationUNet
    opts = SSMOptions.from_any({"mlp_ratio": 2.0, "mlp_stages": "latent"})  # one name is a one-stage list
    assert opts.mlp_stages == ("latent",) and opts.to_dict()["mlp_stages"] == ["latent"]
    assert opts.for_stage("latent").mlp_ratio == 2.0 and opts.for_stage("enc1").mlp_ratio == 0.0
    assert opts.for_stage("enc1").key() == SSMOptions().key()  # no MLP: the plain block's LUT key
    assert SSMOptions(mlp_ratio=2.0).for_stage("enc1") == SSMOptions(mlp_ratio=2.0)  # empty: every stage
    cfg = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1],
               ssm={"mlp_ratio": 2.0, "mlp_stages": ["enc2", "latent"]})
    net = HybridUNet(**cfg)
    with_mlp = {s for s, _, slot in net.slots() if hasattr(slot.candidates["ssm"], "mlp")}
    assert with_mlp == {"enc2", "latent"}
    sub = RestorationUNet("SSSSSSSS", **cfg)
    assert sub.config["ssm"]["mlp_stages"] == ["enc2", "latent"]
    assert sum(hasattr(m, "mlp") for m in sub.modules() if isinstance(m, SSMBlock)) == 2
    net.set_arch("SSSSSSSS")
    sub.load_state_dict(net.path_state_dict(net.arch), strict=True)
    with pytest.raises(ValueError, match=r"ssm.mlp_stages: \['middle'\] are not stages"):
        SSMOptions.from_any({"mlp_stages": ["enc1", "middle"]})
    with pytest.raises(ValueError, match="network-level option"):
        SSMBlock(8, mlp_ratio=2.0, mlp_stages=["enc1"])


def test_mlp_zero_init_starts_the_mlp_half_as_the_identity():
    x = torch.randn(1, 8, 5, 5)
    assert torch.allclose(SSMBlock(8, mlp_ratio=2.0, mlp_zero_init=True)(x), x, atol=1e-6)
    assert not torch.allclose(SSMBlock(8, mlp_ratio=2.0)(x), x, atol=1e-3)
    assert SSMOptions(mlp_ratio=2.0, mlp_zero_init=True).key() == SSMOptions(mlp_ratio=2.0).key()  # same latency


def test_norm_stages_keep_the_layernorm_outside_the_named_stages():
    opts = SSMOptions.from_any({"norm": "none", "norm_stages": ["enc1", "refinement"], "mlp_ratio": 2.0,
                                "mlp_stages": ["latent"]})
    assert opts.for_stage("enc1") == SSMOptions(norm="none")
    assert opts.for_stage("latent") == SSMOptions(mlp_ratio=2.0)  # the LayerNorm kept, and the MLP
    assert opts.for_stage("dec1").key() == SSMOptions().key()
    assert SSMOptions(norm_stages=("enc1",)).for_stage("enc2") == SSMOptions()  # norm: layer everywhere anyway
    with pytest.raises(ValueError, match=r"ssm.norm_stages: \['mid'\] are not stages"):
        SSMOptions.from_any({"norm_stages": ["mid"]})
    with pytest.raises(ValueError, match="network-level options"):
        SSMBlock(8, norm="none", norm_stages=["enc1"])


def test_stage_options_override_any_option_in_the_named_stages():
    from supernet.unet import HybridUNet
    opts = SSMOptions.from_any({"norm": "none", "mlp_ratio": 2.0, "mlp_stages": ["latent"],
                                "stage_options": {"enc1": {"scan_pool": 2, "d_skip": True}, "latent": {"d_state": 8}}})
    assert opts.for_stage("enc1") == SSMOptions(norm="none", scan_pool=2, d_skip=True)
    assert opts.for_stage("latent") == SSMOptions(norm="none", mlp_ratio=2.0, d_state=8)
    assert opts.for_stage("dec1") == SSMOptions(norm="none")
    assert SSMOptions.from_any(opts.to_dict()) == opts  # round trip through a checkpoint's config
    assert opts.to_dict()["stage_options"] == {"enc1": {"d_skip": True, "scan_pool": 2}, "latent": {"d_state": 8}}
    assert opts.key() != SSMOptions.from_any({"norm": "none", "mlp_ratio": 2.0, "mlp_stages": ["latent"]}).key()
    cfg = dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 1, 1, 1],
               ssm={"stage_options": {"enc1": {"scan_pool": 2}}})
    net = HybridUNet(**cfg)
    pools = {s: slot.candidates["ssm"].opts.scan_pool for s, _, slot in net.slots()}
    assert pools["enc1"] == 2 and set(pools.values()) == {1, 2}
    assert net(torch.randn(1, 3, 16, 16)).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("bad, message", [
    ({"mid": {"scan_pool": 2}}, r"'mid' is not a stage"),
    ({"enc1": {"pool": 2}}, r"ssm.stage_options.enc1: unknown or network-level option\(s\) \['pool'\]"),
    ({"enc1": {"mlp_stages": ["enc1"]}}, r"network-level option\(s\) \['mlp_stages'\]"),
    ({"enc1": {"scan_pool": 0}}, r"ssm.stage_options.enc1: ssm.scan_pool must be >= 1"),
    ({"enc1": 2}, r"ssm.stage_options.enc1 must be a mapping"),
    ([["enc1", 2]], r"ssm.stage_options must map stages"),
])
def test_stage_options_name_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        SSMOptions.from_any({"stage_options": bad})
    with pytest.raises(ValueError, match="network-level options"):
        SSMBlock(8, stage_options={"enc1": {"scan_pool": 2}})


@pytest.mark.parametrize("hw", [(8, 8), (7, 5)])
def test_scan_pool_runs_the_token_path_on_the_pooled_grid(hw):
    """Without a gate, a pooled block adds the nearest-upsampled update of the same block run on the pooled tokens."""
    torch.manual_seed(0)
    pooled = perturb_ssm(SSMBlock(8, scan_pool=2, norm="none", d_skip=True)).double()
    with torch.no_grad():  # the depthwise conv (full resolution, before pooling) as the identity
        pooled.conv.weight.zero_()
        pooled.conv.weight[:, 0, 1, 1] = 1.0
    plain = SSMBlock(8, norm="none", d_skip=True).double()
    plain.load_state_dict(pooled.state_dict())
    x = torch.randn(1, 8, *hw, dtype=torch.float64)
    small = torch.nn.functional.avg_pool2d(x, 2, ceil_mode=True)
    update = plain(small) - small
    expected = x + update.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, :, :hw[0], :hw[1]]
    assert torch.allclose(pooled(x), expected, atol=1e-10)
    assert (update.abs().max()) > 1e-3


def test_channel_attention_is_mdta_transposed_attention_added_to_the_scan():
    """The channel-attention term, computed here head by head from its definition (L2-normalised q and k over the
    tokens, a headdim x headdim softmax, applied to the channels of xs), is exactly what the option adds."""
    torch.manual_seed(0)
    with_ca = perturb_ssm(SSMBlock(8, channel_attention=True, headdim=4, norm="none", d_state=4)).double()
    with torch.no_grad():
        with_ca.temperature.copy_(torch.tensor([[[0.5]], [[2.0]]]))
    u = torch.randn(2, 5, 6, 8, dtype=torch.float64)
    xs, q, k = with_ca.in_proj(u).split(with_ca.split, dim=-1)[:3]
    xs = torch.nn.functional.silu(xs)
    expected = torch.empty_like(xs)
    for b in range(2):
        for head in range(2):
            sl = slice(4 * head, 4 * head + 4)
            qh, kh, vh = (z[b, ..., sl].reshape(30, 4) for z in (q, k, xs))
            qh, kh = qh / qh.norm(dim=0), kh / kh.norm(dim=0)
            attn = torch.softmax(qh.t() @ kh * with_ca.temperature[head, 0, 0], dim=1)
            expected[b, ..., sl] = (vh @ attn.t()).reshape(5, 6, 4)
    assert torch.allclose(with_ca._channel_attention(xs, q, k), expected, atol=1e-12)
    # the block's output differs from the same block without the term exactly by out_proj(term)
    plain = SSMBlock(8, headdim=4, norm="none", d_state=4).double()
    state = {k: v for k, v in with_ca.state_dict().items() if k != "temperature"}
    w = state["in_proj.weight"]
    state["in_proj.weight"] = torch.cat([w[:8], w[24:]])
    state["in_proj.bias"] = torch.cat([state["in_proj.bias"][:8], state["in_proj.bias"][24:]])
    plain.load_state_dict(state)
    diff = with_ca._tokens(u) - plain._tokens(u)
    assert torch.allclose(diff, with_ca.out_proj(expected), atol=1e-10)
    assert diff.abs().max() > 1e-3
    assert SSMOptions(channel_attention=True).key() == SSMOptions().key() + "-ca1"


def test_mlp_conv_is_a_depthwise_3x3_on_the_hidden_features():
    """With ``mlp_conv`` the MLP half is Linear -> depthwise 3x3 (zero padding) -> GELU -> Linear, computed here with
    an NCHW conv; the LUT key names the option only where a block has an MLP."""
    torch.manual_seed(0)
    block = perturb_ssm(SSMBlock(8, mlp_ratio=2.0, mlp_conv=True, norm="none")).double()
    fc1, dw, fc2 = block.mlp[0], block.mlp[1].conv, block.mlp[3]
    plain = SSMBlock(8, mlp_ratio=2.0, norm="none").double()
    plain.mlp[0].load_state_dict(fc1.state_dict())
    plain.mlp[2].load_state_dict(fc2.state_dict())
    t = torch.randn(2, 5, 7, 8, dtype=torch.float64)
    assert torch.allclose(block.mlp(t), plain.mlp(t), atol=1e-12)  # starts as the identity: the plain MLP
    with torch.no_grad():
        dw.weight.normal_()
        dw.bias.normal_()
    t = torch.randn(2, 5, 7, 8, dtype=torch.float64)
    hidden = fc1(t).permute(0, 3, 1, 2).contiguous()
    expected = fc2(torch.nn.functional.gelu(torch.nn.functional.conv2d(hidden, dw.weight, dw.bias, padding=1,
                                                                      groups=16)).permute(0, 2, 3, 1))
    assert torch.allclose(block.mlp(t), expected, atol=1e-12)
    # the conv mixes neighbours: moving one token changes its neighbours' MLP output
    t2 = t.clone()
    t2[:, 2, 3] += 1.0
    changed = (block.mlp(t2) - block.mlp(t)).abs().amax(dim=(0, 3)) > 1e-9
    assert changed[1:4, 2:5].all() and not changed[0].any()
    assert SSMOptions(mlp_ratio=2.0, mlp_conv=True).key() == SSMOptions(mlp_ratio=2.0).key() + "-mc1"
    assert SSMOptions(mlp_conv=True).key() == SSMOptions().key()


@pytest.mark.parametrize("pool", [1, 2])
def test_conv_gate_multiplies_the_update_by_silu_of_a_depthwise_conv(pool):
    """With ``conv_gate`` the block adds the same update as without it, times SiLU(3x3 depthwise conv of the tokens)
    at full resolution (computed here with an NCHW conv); the conv starts as the identity, so the gate starts as
    SiLU(u)."""
    torch.manual_seed(0)
    gated = perturb_ssm(SSMBlock(8, conv_gate=True, scan_pool=pool, norm="none")).double()
    plain = SSMBlock(8, scan_pool=pool, norm="none").double()
    plain.load_state_dict({k: v for k, v in gated.state_dict().items() if not k.startswith("conv_gate.")})
    x = torch.randn(1, 8, 7, 9, dtype=torch.float64)
    u = gated.conv(x)  # the tokens the token path reads (conv_first, no norm)
    update = plain(x) - u
    assert torch.allclose(gated(x), u + update * torch.nn.functional.silu(u), atol=1e-10)
    dw = gated.conv_gate.conv
    with torch.no_grad():
        dw.weight.normal_()
        dw.bias.normal_()
    z = torch.nn.functional.conv2d(u, dw.weight, dw.bias, padding=1, groups=8)
    assert torch.allclose(gated(x), u + update * torch.nn.functional.silu(z), atol=1e-10)
    assert update.abs().max() > 1e-3
    assert SSMOptions(conv_gate=True).key() == SSMOptions().key() + "-cg1"


def _update_growth(block: SSMBlock, x: torch.Tensor) -> float:
    """How much larger the block's update gets when its (already large) input gets 10 times larger."""
    with torch.no_grad():
        big, bigger = 100 * x, 1000 * x
        return float((block(bigger) - block.conv(bigger)).abs().max() / (block(big) - block.conv(big)).abs().max())


def test_bc_bound_makes_the_norm_free_update_grow_linearly_with_the_input():
    """Without a token norm x, B and C all scale with the input and the update grows with its cube; B and C through
    k tanh(v / k) leave the scan linear in x once dt (clamped anyway) saturates, and a huge k is the unbounded block."""
    torch.manual_seed(0)
    free = perturb_ssm(SSMBlock(8, norm="none")).double()
    bounded = SSMBlock(8, norm="none", bc_bound=1.0).double()
    bounded.load_state_dict(free.state_dict())
    x = torch.randn(1, 8, 12, 10, dtype=torch.float64)
    assert _update_growth(free, x) > 500.0  # ~10^3
    assert 5.0 < _update_growth(bounded, x) < 20.0  # ~10: B, C and dt saturated
    huge = SSMBlock(8, norm="none", bc_bound=1e9).double()
    huge.load_state_dict(free.state_dict())
    with torch.no_grad():
        assert torch.allclose(huge(x), free(x), atol=1e-9)
        assert not torch.allclose(bounded(x), free(x), atol=1e-6)
    assert SSMOptions(bc_bound=2.0).key() == SSMOptions().key() + "-bc2"
    with pytest.raises(ValueError, match=r"ssm.bc_bound must be >= 0"):
        SSMOptions.from_any({"bc_bound": -1})


def test_dt_floor_bounds_every_step_from_below():
    """``dt_floor`` clamps every token's step from below: at ``dt_floor == dt_limit`` every step is the same, so the
    dt projection no longer changes the output; below it, it does. Not part of the LUT key (a clamp costs nothing)."""
    torch.manual_seed(0)
    x = torch.randn(1, 8, 6, 7, dtype=torch.float64)
    outs = {}
    for floor in (0.0, 1.0):
        block = perturb_ssm(SSMBlock(8, norm="none", dt_floor=floor)).double()
        with torch.no_grad():
            before = block(x)
            block.in_proj.bias[-1] += 3.0  # the dt channel (one direction, one head): larger raw steps
            block.in_proj.weight[-1] *= 0.0
            outs[floor] = (before, block(x))
    assert not torch.allclose(*outs[0.0], atol=1e-6)
    assert torch.allclose(*outs[1.0], atol=1e-12)
    assert SSMOptions(dt_floor=0.3).key() == SSMOptions().key()
    with pytest.raises(ValueError, match=r"ssm.dt_floor must be in \[0, dt_limit=1\]"):
        SSMOptions.from_any({"dt_floor": 1.5})
