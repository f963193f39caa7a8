"""The generation pipeline: each step alone, then end to end through the audit."""

import json

import numpy as np
import pytest

import trustframe
from trustframe.errors import ConfigError, PolicyRefusal, UnsupportedMedia
from trustframe.generator import pipeline
from trustframe.generator.pipeline import GenerationRequest


def test_request_validation():
    with pytest.raises(ConfigError, match="multiple of 8"):
        GenerationRequest("a red ball", width=60)
    with pytest.raises(ConfigError, match="frames"):
        GenerationRequest("a red ball", frames=0)
    with pytest.raises(ConfigError, match="shape_guidance"):
        GenerationRequest("a red ball", shape_guidance=-1)
    with pytest.raises(TypeError):
        GenerationRequest(None)
    assert len(GenerationRequest("x").prompt_sha256) == 64


def test_refuse_unsafe_step():
    pipeline.refuse_unsafe(GenerationRequest("two blue squares drifting up"))
    with pytest.raises(PolicyRefusal) as e:
        pipeline.refuse_unsafe(GenerationRequest("Donald Trump giving a speech"))
    assert e.value.category == "public-figure"


@pytest.mark.slow
def test_sample_and_decode_steps(home):
    """Each step gets the objects it uses: the generator (text encoder, DiT, sampler, VAE), the
    watermarker."""
    from trustframe.generator.models import load_generator

    g = load_generator(pipeline.DEFAULT_PRESET)
    marker = pipeline.Watermarker.from_settings(home)
    req = GenerationRequest("a yellow star moving left", steps=4, upscale=1)
    z = pipeline.sample_latents(req, g)
    z2 = pipeline.sample_latents(req, g)
    frames = pipeline.decode_watermarked(req, z, "00112233aabb", g, marker)
    assert frames.data.shape == (16, 64, 64, 3)
    again = pipeline.decode_watermarked(req, z2, "00112233aabb", g, marker)
    assert np.array_equal(frames.data, again.data)  # a seed fixes the clip
    raw = g.decode(z)
    assert not np.array_equal(raw, frames.data)  # the decode step always marks


def test_sampler_settings_are_the_cards_read_back_whole():
    """The DiT card stores the sampler's settings as one object; the generator samples with all of them."""
    from trustframe.generator.models import load_generator
    from trustframe.generator.sampler import SamplerSettings
    from trustframe.weights import load_checkpoint

    card = load_checkpoint("generator", pipeline.DEFAULT_PRESET).card
    g = load_generator(pipeline.DEFAULT_PRESET)
    assert g.sampler == SamplerSettings.from_card(card) and g.sampler.to_card() == card["sampler"]
    assert g.sampler.shift == 3.0 and g.shift == g.sampler.shift
    req = GenerationRequest("a red ball", guidance=4.0)
    assert pipeline.sampler_settings(req, g) == g.sampler.override(guidance=4.0)
    assert pipeline.sampler_settings(req, g).steps == card["sampler"]["steps"]
    with pytest.raises(ConfigError, match="no sampler settings"):
        SamplerSettings.from_card({"name": "old"})
    with pytest.raises(ConfigError, match="unknown sampler settings"):
        SamplerSettings.from_card({"sampler": {**card["sampler"], "eta": 0.5}})


@pytest.mark.slow
def test_generate_end_to_end_audits_as_ai_generated(home, tmp_path):
    r = trustframe.generate("a red ball moving quickly to the left", tmp_path / "clip.mp4", settings=home,
                            steps=6, seed=3)
    v = trustframe.audit(r.path, settings=home)
    assert v.label == "ai-generated" and v.provenance.state == "trusted" and v.provenance.ai_generated
    assert v.watermark.detected and v.watermark.payload == r.payload
    assert v.provenance.soft_bindings == [{"alg": v.watermark.alg, "value": r.payload}]
    from trustframe.provenance.reading import read_provenance

    assert read_provenance(r.path, home).actions == ["c2pa.created"]
    # the manifest carries the prompt's hash and the model card hashes, never the prompt
    import c2pa

    from trustframe.provenance.manifest import c2pa_context

    with c2pa_context(home) as ctx, c2pa.Reader(str(r.path), context=ctx) as reader:
        text = reader.json()
    assert r.prompt_sha256 in text and "red ball" not in text
    store = json.loads(text)
    m = store["manifests"][store["active_manifest"]]
    gen = next(a for a in m["assertions"] if a["label"] == pipeline.GENERATION_ASSERTION)["data"]
    assert set(gen["model_card_sha256"]) >= {"tfdit-s"}
    sampler = pipeline.Pipeline.load(settings=home).generator.sampler  # the card's, as no option was given
    assert gen["steps"] == 6 and gen["seed"] == 3  # enough to rerun the sampler
    assert (gen["guidance"], gen["shape_guidance"], gen["shift"]) == (
        sampler.guidance, sampler.shape_guidance, sampler.shift)


def test_single_frame_makes_an_image(home, tmp_path):
    r = trustframe.generate("a green square", tmp_path / "still.png", settings=home, frames=1, steps=4)
    assert trustframe.audit(r.path, settings=home).label == "ai-generated"
    with pytest.raises(UnsupportedMedia):
        trustframe.generate("a green square", tmp_path / "still.mp4", settings=home, frames=1, steps=4)


def test_refusal_writes_nothing_and_exits_5(run_cli, home, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run_cli("generate", "Taylor Swift dancing on stage", "-o", str(out_dir / "x.mp4"))
    assert code == 5 and "public figure" in err
    assert list(out_dir.iterdir()) == []
