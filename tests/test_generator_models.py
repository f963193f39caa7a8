"""The generator's networks: every registered size, adaLN-Zero, causal VAE, RoPE, sampler, presets."""

from __future__ import annotations

import pytest
import torch

from trustframe.generator.dit import DIT_SIZES, DiTBlock, apply_rope, create_dit, rope_3d
from trustframe.generator.sampler import euler_sample, paired_flow_loss, rectified_flow_loss, time_grid
from trustframe.generator.text import TEXT_SIZES, UNK, build_vocab, create_text_encoder, words
from trustframe.generator.vae import VAE_SIZES, create_vae

torch.set_num_threads(1)
VOCAB = build_vocab(["a red ball moving left", "two blue squares drifting up, then cut to a star"])


def _perturb_zero_inits(model: torch.nn.Module) -> None:
    """adaLN-Zero makes most gradients exactly zero at init; give the zero-initialised layers small
    random weights so 'every parameter gets a gradient' tests something."""
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        if p.dim() >= 1 and not p.detach().abs().any():
            p.data.normal_(0, 0.02, generator=g)


def _tiny_text(vocab=VOCAB):
    return create_text_encoder("text-t", vocab=vocab)


@pytest.mark.parametrize("name", sorted(DIT_SIZES))
def test_dit_sizes_forward_backward(name):
    torch.manual_seed(0)
    model = create_dit(name, in_channels=4, context_dim=16)
    _perturb_zero_inits(model)
    z = torch.randn(2, 4, 2, 4, 4)  # (N, C, t, h, w)
    ctx, mask = torch.randn(2, 3, 16), torch.tensor([[True, True, False], [True, True, True]])
    v = model(z, torch.rand(2), ctx, mask)
    assert v.shape == z.shape and torch.isfinite(v).all()
    v.pow(2).mean().backward()
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        assert torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n


@pytest.mark.parametrize("name", sorted(VAE_SIZES))
def test_vae_sizes_forward_backward(name):
    vae = create_vae(name)
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    rec, kl = vae(x)
    assert rec.shape == x.shape and torch.isfinite(rec).all() and torch.isfinite(kl)
    (rec.pow(2).mean() + kl).backward()
    for n, p in vae.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, n


@pytest.mark.parametrize("name", sorted(TEXT_SIZES))
def test_text_sizes_forward_backward(name):
    text = create_text_encoder(name, vocab=VOCAB)
    tokens, mask, pooled = text.encode(["a red ball", "two blue squares drifting up"])
    assert tokens.shape[:2] == mask.shape and pooled.shape == (2, text.cfg.dim)
    (tokens[mask].pow(2).mean() + pooled.pow(2).mean()).backward()
    for n, p in text.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n


def test_adaln_zero_blocks_are_identity_at_init():
    model = create_dit("dit-t", in_channels=4, context_dim=16)
    x = torch.randn(2, 10, model.cfg.dim)
    c = torch.randn(2, model.cfg.dim)
    ang = rope_3d((1, 2, 5), model.cfg.dim // model.cfg.heads, 100.0)
    ctx = torch.randn(2, 3, 16)
    for block in model.blocks:
        assert isinstance(block, DiTBlock)
        assert torch.equal(block(x, c, ang, ctx, None), x)
    out = model(torch.randn(2, 4, 2, 4, 4), torch.rand(2), ctx)
    assert not out.abs().any()  # zero-initialised final layer


@pytest.mark.parametrize("frames,latent_frames", [(1, 1), (5, 2), (9, 3), (16, 5), (17, 5)])
@pytest.mark.parametrize("hw", [(16, 16), (16, 24), (24, 16), (20, 12)])
def test_vae_shapes(frames, latent_frames, hw):
    vae = create_vae("vae-tiny").eval()
    x = torch.rand(1, 3, frames, *hw) * 2 - 1
    with torch.no_grad():
        z = vae.encode(x)
        s = vae.cfg.space_factor
        assert z.shape == (1, vae.cfg.latent_channels, latent_frames, -(-hw[0] // s), -(-hw[1] // s))
        assert vae.latent_frames(frames) == latent_frames
        y = vae.decode(z, frames, *hw)
    assert y.shape == x.shape


def test_vae_is_causal():
    vae = create_vae("vae-tiny").eval()
    x = torch.rand(1, 3, 13, 16, 16) * 2 - 1
    y = x.clone()
    y[:, :, 9:] = torch.rand_like(y[:, :, 9:])  # change frames 9.. (latent frame 2 covers 5..8)
    with torch.no_grad():
        za, zb = vae.encode(x), vae.encode(y)
        assert torch.equal(za[:, :, :3], zb[:, :, :3]) and not torch.equal(za[:, :, 3:], zb[:, :, 3:])
        zc = za.clone()
        zc[:, :, 2:] = torch.randn_like(zc[:, :, 2:])  # change latent frames 2.. (pixel frames 5..)
        da, dc = vae.decode(za), vae.decode(zc)
    assert torch.equal(da[:, :, :5], dc[:, :, :5]) and not torch.equal(da[:, :, 5:], dc[:, :, 5:])


def test_size_names_build_what_ships_and_preset_names_are_only_weights():
    """`vae-f4c8` / `dit-s` build the shipped tfvae-f4c8 / tfdit-s networks, state dict for state dict;
    the presets' names are weights, not sizes."""
    from trustframe.weights import load_checkpoint

    vae = load_checkpoint("generator", "tfvae-f4c8")
    dit = load_checkpoint("generator", "tfdit-s")
    built = {"tfvae-f4c8": create_vae("vae-f4c8").state_dict(),
             "tfdit-s": create_dit("dit-s", in_channels=dit.card["config"]["in_channels"],
                                   context_dim=dit.card["config"]["context_dim"]).state_dict()}
    for ck in (vae, dit):
        assert {k: tuple(v.shape) for k, v in built[ck.name].items()} == \
            {k: tuple(v.shape) for k, v in ck.state_dict.items()}
    shipped = {k: tuple(v) if isinstance(v, list) else v for k, v in vae.card["config"].items()}
    assert create_vae("vae-f4c8").cfg.to_dict() == shipped
    assert not any(name.startswith("tf") for name in [*VAE_SIZES, *DIT_SIZES])
    with pytest.raises(ValueError, match="weights preset"):
        create_vae("tfvae-f4c8")
    with pytest.raises(ValueError, match="weights preset"):
        create_dit("tfdit-s")


@pytest.mark.parametrize("grid", [(1, 1, 1), (5, 8, 8), (3, 12, 8), (7, 2, 3)])
def test_rope_any_grid(grid):
    head_dim = 64
    ang = rope_3d(grid, head_dim, 100.0)
    n = grid[0] * grid[1] * grid[2]
    assert ang.shape == (n, head_dim // 2)
    q = torch.randn(1, 1, n, head_dim)
    rq = apply_rope(q, ang)
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-4)  # a rotation
    # relative: <R(p) q, R(p') k> depends only on p - p' (shift the whole grid by one time step)
    if grid[0] > 2:
        a, b = torch.randn(head_dim), torch.randn(head_dim)
        hw = grid[1] * grid[2]

        def dot(i, j):
            ra = apply_rope(a.view(1, 1, 1, -1), ang[i:i + 1])
            return (ra * apply_rope(b.view(1, 1, 1, -1), ang[j:j + 1])).sum()

        assert torch.allclose(dot(0, hw), dot(hw, 2 * hw), atol=1e-4)
    model = create_dit("dit-t", in_channels=4, context_dim=16)
    _perturb_zero_inits(model)
    z = torch.randn(1, 4, grid[0], 2 * grid[1], 2 * grid[2])
    assert model(z, torch.rand(1), torch.randn(1, 2, 16)).shape == z.shape


def test_sampler_is_deterministic_with_seed():
    torch.manual_seed(0)
    model = create_dit("dit-t", in_channels=4, context_dim=32).eval()
    _perturb_zero_inits(model)
    text = _tiny_text().eval()
    cond, uncond = text.encode(["a red ball moving left"]), text.encode([""])
    calls = []
    a = euler_sample(model, (1, 4, 2, 4, 4), cond, uncond, steps=4, guidance=4.0, seed=3,
                     progress=lambda i, n: calls.append(i))
    b = euler_sample(model, (1, 4, 2, 4, 4), cond, uncond, steps=4, guidance=4.0, seed=3)
    c = euler_sample(model, (1, 4, 2, 4, 4), cond, uncond, steps=4, guidance=4.0, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c) and calls == [1, 2, 3, 4]
    assert time_grid(10)[0] == 1 and time_grid(10)[-1] == 0


def test_sampling_from_a_noised_latent_starts_at_t_start_and_lands_on_the_data():
    """With the exact velocity of a one-point data set (x_t = (1 - t) c + t n, so v = (x_t - c) / t),
    Euler from any t_start ends on c; the first call sees t_start, and a missing `start` is refused."""
    c = torch.randn(1, 4, 2, 4, 4)
    seen = []

    def exact(x, t, *_):
        seen.append(float(t[0]))
        return (x - c) / t.view(-1, 1, 1, 1, 1)

    out = euler_sample(exact, tuple(c.shape), (None, None, None), None, steps=5, guidance=1.0,
                       t_start=0.4, start=c + 0.5)
    assert seen[0] == pytest.approx(0.4) and len(seen) == 5
    assert torch.allclose(out, c, atol=1e-5)  # the exact flow forgets where the start was
    with pytest.raises(ValueError, match="start"):
        euler_sample(exact, tuple(c.shape), (None, None, None), None, steps=5, guidance=1.0, t_start=0.4)


def test_contrastive_guidance_pushes_away_from_the_alternatives_and_nothing_else():
    """One Euler step from t = 1 to 0 is x - v, with v = v_u + g (v_c - v_u) + w (v_c - mean_k v_k).
    A model whose velocity is its pooled text vector makes each branch's part visible; alternatives
    equal to the prompt add nothing, and a contrast that is not K blocks of N rows is refused."""
    def model(x, t, ctx, mask, pooled):
        return pooled.view(-1, 1, 1, 1, 1).expand(x.shape[0], *x.shape[1:])

    def cond(*values):
        n = len(values)
        return torch.zeros(n, 1, 2), torch.ones(n, 1, dtype=torch.bool), torch.tensor(values)

    shape = (2, 1, 1, 2, 2)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    c, u = cond(1.0, 2.0), cond(0.0, 0.0)
    plain = euler_sample(model, shape, c, u, steps=1, guidance=3.0, seed=5)
    assert torch.allclose(plain, x - torch.tensor([3.0, 6.0]).view(2, 1, 1, 1, 1))
    alt = cond(-1.0, 2.0, 0.0, 2.0)  # K = 2 blocks: prompt 0 has alternatives -1 and 0, prompt 1 only itself
    pushed = euler_sample(model, shape, c, u, steps=1, guidance=3.0, seed=5, contrast=alt,
                          contrast_weight=0.5)
    # prompt 0: 3 + 0.5 * (1 - (-1 + 0) / 2) = 3.75; prompt 1: 6 + 0.5 * (2 - 2) = 6
    assert torch.allclose(pushed, x - torch.tensor([3.75, 6.0]).view(2, 1, 1, 1, 1))
    off = euler_sample(model, shape, c, u, steps=1, guidance=3.0, seed=5, contrast=alt, contrast_weight=0.0)
    assert torch.equal(off, plain)
    with pytest.raises(ValueError, match="blocks"):
        euler_sample(model, shape, c, u, steps=1, guidance=3.0, contrast=cond(1.0, 2.0, 3.0),
                     contrast_weight=1.0)


def test_shape_alternatives_send_every_shape_to_each_other_shape_once():
    import numpy as np

    from trustframe.generator import captions, world

    rng = np.random.default_rng(3)
    for _ in range(40):
        spec = world.sample_spec(rng, frames=16, multi_shot_p=0.3)
        prompt = captions.caption(spec, rng)
        original = captions.parse(prompt)
        shapes = [sorted(o.shape for o in s.objects) for s in original.shots]
        alts = captions.shape_alternatives(prompt)
        assert len(alts) == len(captions.SHAPE_WORDS) - 1
        seen = set()
        for alt in alts:
            spec_alt = captions.parse(alt)
            # same counts, colours, directions and cut; every shape moved to another one
            assert [len(s.objects) for s in spec_alt.shots] == [len(s) for s in shapes]
            assert spec_alt.cut_at == original.cut_at
            for before, after in zip(original.shots, spec_alt.shots, strict=True):
                pairs = {(a.shape, b.shape) for a, b in zip(sorted(before.objects, key=_key),
                                                            sorted(after.objects, key=_key), strict=True)}
                assert all(a != b for a, b in pairs)
                seen |= pairs
        for a in {x for s in shapes for x in s}:
            assert {b for x, b in seen if x == a} == set(captions.SHAPE_WORDS) - {a}
    assert captions.shape_alternatives("A Red Thing moving left") == ["a red thing moving left"] * 3


def _key(o):
    return (o.colour, o.direction, o.speed)


def test_logit_normal_t_mean_moves_training_towards_high_noise():
    from trustframe.generator.sampler import logit_normal_t

    g = torch.Generator().manual_seed(0)
    base, shifted = logit_normal_t(20000, g), logit_normal_t(20000, g, mean=1.0)
    assert 0.05 < (base > 0.8).float().mean() < 0.11  # logit-normal(0, 1): ~8% above t = 0.8
    assert 0.30 < (shifted > 0.8).float().mean() < 0.40  # mean 1: ~35%
    assert shifted.min() > 0 and shifted.max() < 1


def test_rectified_flow_loss_is_finite():
    model = create_dit("dit-t", in_channels=4, context_dim=32)
    text = _tiny_text()
    ctx, mask, pooled = text.encode(["a red ball", ""])
    loss = rectified_flow_loss(lambda z, t: model(z, t, ctx, mask, pooled), torch.randn(2, 4, 2, 4, 4))
    loss.backward()
    assert torch.isfinite(loss)


def test_absolute_positions_let_the_dit_place_things_rope_alone_cannot():
    """On a constant input every token looks the same; RoPE is relative, so without the absolute
    position features the output is the same everywhere (no prior on where objects are)."""
    model = create_dit("dit-t", in_channels=4, context_dim=32)
    _perturb_zero_inits(model)
    ctx, mask, pooled = _tiny_text().encode(["a red ball moving left"])
    z, t = torch.zeros(1, 4, 3, 8, 8), torch.full((1,), 0.9)
    with torch.no_grad():
        placed = model(z, t, ctx, mask, pooled)
        model.pos_embed.weight.zero_()
        model.pos_embed.bias.zero_()
        rope_only = model(z, t, ctx, mask, pooled)
    per_token = [model.patchify(y)[0].std(dim=1) for y in (placed, rope_only)]  # (1, P) over tokens
    assert per_token[0].min() > 1e-3  # differs from token to token (time and space)
    assert per_token[1].max() < 1e-5  # the same token everywhere


def test_rectified_flow_loss_weight_counts_only_where_it_is_put():
    """A weight that is zero outside a region makes the loss blind to errors outside it."""
    x0 = torch.randn(2, 4, 2, 4, 4)
    region = torch.zeros(2, 1, 2, 4, 4)
    region[:, :, :, :2] = 1  # top half of every latent frame

    def perfect_in_region(bias):  # the exact velocity in the region, off by `bias` elsewhere
        def velocity(xt, t):
            tt = t.view(-1, 1, 1, 1, 1)
            v = (xt - x0) / tt  # = noise - x0 for x_t = (1 - t) x0 + t noise
            return v + bias * (1 - region)

        return velocity

    g = torch.Generator()
    small = rectified_flow_loss(perfect_in_region(0.1), x0, g.manual_seed(0), weight=region)
    large = rectified_flow_loss(perfect_in_region(5.0), x0, g.manual_seed(0), weight=region)
    plain = rectified_flow_loss(perfect_in_region(5.0), x0, g.manual_seed(0))
    ones = rectified_flow_loss(perfect_in_region(5.0), x0, g.manual_seed(0), weight=torch.ones(1))
    assert small < 1e-6 and large < 1e-6  # weighted: the off-region error does not count
    assert plain > 1.0 and torch.isclose(ones, plain)  # unweighted (or uniform weight): it does


def test_paired_flow_loss_scores_how_much_of_the_difference_is_predicted():
    """0 for a denoiser that knows each member's clean latent, 1 for one that gives both members of
    a pair the same velocity (it ignores the word), and in between for one that predicts half."""
    xa = torch.randn(3, 4, 2, 4, 4)
    xb = xa.clone()
    xb[:, :, :, 1:3, 1:3] += torch.randn(3, 4, 2, 2, 2)  # the pair differs in one small region
    x0 = torch.cat([xa, xb])

    def oracle(share):  # the exact velocity of a, and of b up to `share` of its difference from a
        def velocity(xt, t):
            v = (xt - x0) / t.view(-1, 1, 1, 1, 1)  # = noise - x0
            va, vb = v.chunk(2)
            return torch.cat([va, va + share * (vb - va)])

        return velocity

    g = torch.Generator()
    exact, plain = paired_flow_loss(oracle(1.0), xa, xb, g.manual_seed(0))
    blind, _ = paired_flow_loss(oracle(0.0), xa, xb, g.manual_seed(0))
    half, _ = paired_flow_loss(oracle(0.5), xa, xb, g.manual_seed(0))
    assert exact < 1e-9 and plain < 1e-9
    assert torch.isclose(blind, torch.tensor(1.0)) and torch.isclose(half, torch.tensor(0.25))


@pytest.mark.parametrize("prompt", ["", "A ZEBRA juggling 🦓 flamingos!!", "réd bäll — ×××", "word " * 500,
                                    "   ", "\x00\n\t"])
def test_unknown_words_do_not_crash(prompt):
    text = _tiny_text().eval()
    ids, mask = text.tokenize([prompt])
    assert mask[0, 0] and ids.shape[1] <= text.cfg.max_len
    tokens, mask, pooled = text.encode([prompt])
    assert torch.isfinite(tokens[mask]).all() and torch.isfinite(pooled).all()
    assert text.tokenize(["zebra"])[0][0, 1] == text.index[UNK]
    assert words("A Red-Ball, moving!") == ["a", "red", "ball", "moving"]


def test_shipped_preset_round_trips():
    from trustframe.generator.models import Latents, load_generator

    g = load_generator("tfdit-s")
    assert load_generator("tfdit-s") is g  # cached
    assert g.card["name"] == "tfdit-s" and g.card["version"]
    assert len(g.card_paths) == 3 and all(p.is_file() for p in g.card_paths)
    z = g.sample("a red ball moving left", frames=5, height=64, width=96, steps=2, seed=0)
    assert isinstance(z, Latents)
    frames = g.decode(z)
    assert frames.shape == (5, 64, 96, 3) and frames.dtype.name == "uint8"
    z2 = g.sample("a red ball moving left", frames=5, height=64, width=96, steps=2, seed=0)
    assert torch.equal(z.z, z2.z)
    assert g.decode(g.sample("zebra 🦓", frames=1, steps=1)).shape == (1, 64, 64, 3)
    # a batch is the same clips as one prompt at a time: the first row shares the seed's noise
    both = g.sample_batch(["a red ball moving left", "two blue stars drifting up"], frames=5, height=64,
                          width=96, steps=2, seed=0)
    assert both.z.shape[0] == 2 and torch.allclose(both.z[:1], z.z, atol=1e-4)
    assert g.decode_batch(both).shape == (2, 5, 64, 96, 3)
    with pytest.raises(ValueError, match="decode_batch"):
        g.decode(both)
    with pytest.raises(ValueError, match="no prompts"):
        g.sample_batch([], steps=1)
    # the DiT's latent space is the VAE's normalised per channel by the card's statistics
    n = g.normalise(z.z)
    assert torch.allclose(g.denormalise(n), z.z, atol=1e-5)
    mean, std = (torch.tensor(g.card["dit"][k]) for k in ("latent_mean", "latent_std"))
    assert torch.allclose(n[0, :, 0, 0, 0] * std + mean, z.z[0, :, 0, 0, 0], atol=1e-5)


@pytest.mark.slow
def test_a_two_shot_prompt_is_sampled_shot_by_shot_and_joined_at_its_cut():
    """Each shot is sampled from its own words, and the decoded clip is the first shot up to the cut
    frame the prompt names, then the second shot from its start; a cut frame outside the clip falls
    in the middle."""
    import numpy as np

    from trustframe.generator.models import Latents, load_generator

    g = load_generator("tfdit-s")
    prompts = ["A red ball moving left, then after 6 frames cut to two blue stars drifting up.",
               "a green box moving up",
               "A yellow star moving down. At frame 40, cut to a red ball moving up."]
    z = g.sample_batch(prompts, frames=9, steps=2, seed=1)
    assert z.z.shape[0] == 5 and z.cuts == (6, None, 4) and z.clips == 3
    shots = g.decode_batch(Latents(z.z, 9, 64, 64))  # every row decoded as a clip of its own
    clips = g.decode_batch(z)
    assert clips.shape == (3, 9, 64, 64, 3)
    assert np.array_equal(clips[0], np.concatenate([shots[0][:6], shots[1][:3]]))
    assert np.array_equal(clips[1], shots[2])
    assert np.array_equal(clips[2], np.concatenate([shots[3][:4], shots[4][:5]]))
    image = g.sample(prompts[0], frames=1, steps=1)  # one frame: no cut to place, the prompt as it is
    assert image.z.shape[0] == 1 and image.cuts == (None,)
