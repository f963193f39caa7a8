"""Chinese prompts (issue 20, part 2): the caption grammar, Traditional / Simplified equivalence, the text
encoder's Chinese rows (English untouched), the unknown-word rule, and Chinese vs English clips."""

import hashlib
import json

import numpy as np
import pytest

from trustframe.errors import PromptNotUnderstood
from trustframe.generator import captions, captions_zh, world
from trustframe.generator.text import read_prompt, words

RED_CIRCLE_ZH = "一個紅色的圓形向左快速移動"  # Traditional
RED_CIRCLE_ZH_S = "一个红色的圆形向左快速移动"  # Simplified
RED_CIRCLE_EN = "a red circle moving quickly to the left"
# sha256 of the shipped English text encoder (its 167 vocabulary words, then every tensor in key order,
# embedding rows of the English words only) as it was before the Chinese rows were added.
ENGLISH_SHA256 = "9d70263c6481735ab0a2cd92e4ce79107dfce98f3bc9ce22c3e978a67ed30101"
ENGLISH_WORDS = 167
SEED = 1


@pytest.fixture(scope="module")
def text():
    from trustframe.generator.models import load_generator

    return load_generator("tfdit-s").text


def _specs(n, seed=0, multi_shot_p=0.3):
    rng = np.random.default_rng(seed)
    return [world.sample_spec(rng, split="any", multi_shot_p=multi_shot_p) for _ in range(n)]


def test_traditional_and_simplified_read_alike(text):
    assert captions_zh.to_simplified(RED_CIRCLE_ZH) == RED_CIRCLE_ZH_S
    assert words(RED_CIRCLE_ZH, text.lexicon) == words(RED_CIRCLE_ZH_S, text.lexicon) == [
        "一个", "红色", "的", "圆形", "向左", "快速", "移动"]
    pairs = []
    for i, spec in enumerate(_specs(60)):
        simp = captions_zh.caption_zh(spec, np.random.default_rng(i))
        trad = captions_zh.caption_zh(spec, np.random.default_rng(i), "traditional")
        assert trad == captions_zh.to_traditional(simp)
        pairs.append((simp, trad))
    assert sum(s != t for s, t in pairs) > 50  # the scripts really differ
    ids_s, _ = text.tokenize([s for s, _ in pairs])
    ids_t, _ = text.tokenize([t for _, t in pairs])
    assert (ids_s == ids_t).all()
    a, b = text.encode([s for s, _ in pairs[:8]]), text.encode([t for _, t in pairs[:8]])
    assert all((x == y).all() for x, y in zip(a, b, strict=True))


def test_every_chinese_caption_word_is_known(text):
    for i, spec in enumerate(_specs(80, seed=1)):
        for script in ("simplified", "traditional"):
            cap = captions_zh.caption_zh(spec, np.random.default_rng(i), script)
            ws = words(cap, text.lexicon)
            assert all(w in text.index for w in ws), (cap, [w for w in ws if w not in text.index])
            r = read_prompt(cap, text.cfg.vocab)
            assert r.unknown == () and not r.refuse and r.warning == ""


def test_english_weights_and_tokens_unchanged(text):
    """The Chinese rows are appended: English vocabulary, rows and every other tensor are the shipped
    ones bit for bit, and text without Chinese is tokenised by the old rule."""
    from trustframe.weights import load_checkpoint

    ck = load_checkpoint("generator", "tfdit-s-text")
    vocab = ck.card["config"]["vocab"]
    assert vocab[:ENGLISH_WORDS] == text.cfg.vocab[:ENGLISH_WORDS]
    assert all(captions_zh.has_cjk(w) for w in vocab[ENGLISH_WORDS:])
    h = hashlib.sha256(json.dumps(vocab[:ENGLISH_WORDS]).encode())
    for k in sorted(ck.state_dict):
        t = ck.state_dict[k][:ENGLISH_WORDS] if k == "embed.weight" else ck.state_dict[k]
        h.update(k.encode())
        h.update(t.contiguous().numpy().tobytes())
    assert h.hexdigest() == ENGLISH_SHA256
    import re

    for i, spec in enumerate(_specs(30, seed=2)):
        cap = captions.caption(spec, np.random.default_rng(i))
        assert words(cap, text.lexicon) == re.findall(r"[a-z0-9]+", cap.lower())


def test_english_encodings_identical_to_english_only_encoder(text):
    """An encoder cut back to the English words encodes English prompts exactly as the shipped one."""
    import torch

    from trustframe.generator.text import TextConfig, TextEncoder

    cfg = TextConfig.from_dict({**text.cfg.to_dict(), "vocab": text.cfg.vocab[:ENGLISH_WORDS]})
    old = TextEncoder(cfg).eval()
    state = {k: v.clone() for k, v in text.state_dict().items()}
    state["embed.weight"] = state["embed.weight"][:ENGLISH_WORDS]
    old.load_state_dict(state)
    prompts = [captions.caption(s, np.random.default_rng(i)) for i, s in enumerate(_specs(16, seed=3))]
    prompts += ["", "a dog running", "über red circle"]
    with torch.no_grad():
        for a, b in zip(old.encode(prompts), text.encode(prompts), strict=True):
            assert torch.equal(a, b)


def test_split_shots_and_shape_alternatives_in_chinese():
    shots, cut = captions.split_shots("一個紅色的圓形向左移動，然後在第9幀切換到兩個藍色的方塊向上移動。")
    assert (shots, cut) == (["一个红色的圆形向左移动", "两个蓝色的方块向上移动"], 9)
    assert captions.split_shots("一个红色的圆形向左移动，十二帧后切到一颗星星向下移动")[1] == 12
    assert captions.split_shots(RED_CIRCLE_ZH) == ([RED_CIRCLE_ZH], None)
    alts = captions.shape_alternatives("三个红色三角形向左移动")
    assert len(alts) == 3 and all("三个" in a and "三角形" not in a for a in alts)
    for i, spec in enumerate(_specs(40, seed=4, multi_shot_p=1.0)):
        cap = captions_zh.caption_zh(spec, np.random.default_rng(i), "traditional" if i % 2 else "simplified")
        en_shots, _ = captions.split_shots(captions.caption(spec, np.random.default_rng(i)))
        zh_shots, zh_cut = captions.split_shots(cap)
        assert zh_cut == spec.cut_at and len(zh_shots) == len(en_shots) == 2, cap


def test_unknown_word_rule():
    from trustframe.generator.models import load_generator

    g = load_generator("tfdit-s")
    ok = g.read("a red ball moving left")
    assert ok.understood == ("red", "ball", "moving", "left") and not ok.unknown and not ok.refuse
    warn = g.read("a red ball moving left past a spaceship")
    assert warn.unknown == ("past", "spaceship") and not warn.refuse and "'spaceship'" in warn.warning
    assert g.read("一个红色的圆形在天空中向左移动").unknown == ("天空中",)
    unreadable = ("красный круг движется влево", "a dog running", "", "一只小狗在草地上奔跑", "das rote Auto")
    for prompt in unreadable:
        assert g.read(prompt).refuse, prompt
    assert g.read("red xyzzy").refuse is False  # one of two: not more than half
    assert g.read("red xyzzy plugh").refuse is True


def test_pipeline_refuses_unreadable_prompt_before_sampling():
    from trustframe.generator import pipeline
    from trustframe.generator.models import load_generator

    g = load_generator("tfdit-s")
    with pytest.raises(PromptNotUnderstood, match="красный") as e:
        pipeline.check_understood(pipeline.GenerationRequest("красный круг движется влево"), g)
    assert e.value.exit_code == 6 and e.value.status == 422 and "круг" in e.value.unknown
    r = pipeline.check_understood(pipeline.GenerationRequest("a red ball moving left in fog"), g)
    assert r.unknown == ("fog",)
    assert pipeline.check_understood(pipeline.GenerationRequest(RED_CIRCLE_ZH), g).understood


def test_cli_says_which_words_were_not_understood(run_cli, tmp_path):
    code, out, err = run_cli("generate", "a dog chasing a cat", "-o", str(tmp_path / "x.mp4"))
    assert code == 6
    assert "'dog'" in err and "'chasing'" in err and "'cat'" in err
    assert not (tmp_path / "x.mp4").exists()


def test_http_prompt_check_says_what_would_be_generated(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from trustframe.service.http import create_app
    from trustframe.settings import load_settings

    monkeypatch.setenv("TRUSTFRAME_HOME", str(tmp_path))
    client = TestClient(create_app(load_settings()))

    def check(body):
        return client.post("/v1/prompts/check", json=body)

    r = check({"prompt": RED_CIRCLE_ZH})
    assert r.status_code == 200
    body = r.json()
    assert body["decision"] == "generate" and body["policy"]["allowed"] and body["policy"]["language"] == "zh"
    assert body["understanding"]["understood"] == ["一个", "红色", "圆形", "向左", "快速", "移动"]
    assert body["understanding"]["unknown"] == []
    body = check({"prompt": "a red ball moving left near a lighthouse"}).json()
    assert body["decision"] == "warn" and body["understanding"]["unknown"] == ["near", "lighthouse"]
    body = check({"prompt": "красный круг движется влево"}).json()
    assert body["decision"] == "refuse" and body["policy"]["allowed"] and body["understanding"]["refuse"]
    body = check({"prompt": "泰勒·斯威夫特的裸照"}).json()
    assert body["decision"] == "refuse" and not body["policy"]["allowed"] and body["understanding"] is None
    for bad, status in (([], 422), ({"prompt": 3}, 422), ({"prompt": "a red ball", "preset": "nope"}, 400)):
        r = check(bad)
        assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]


@pytest.mark.slow
def test_chinese_and_english_prompts_give_clips_read_alike():
    """Done means: the red-circle prompt, in Traditional, Simplified and English, draws one red circle
    moving left (seeded, small), as the checker reads it."""
    from trustframe.generator import checker
    from trustframe.generator.models import load_generator

    g = load_generator("tfdit-s")
    prompts = [RED_CIRCLE_ZH, RED_CIRCLE_ZH_S, RED_CIRCLE_EN]
    clips = [g.decode(g.sample(p, steps=20, seed=SEED)) for p in prompts]  # the same noise for each
    assert np.array_equal(clips[0], clips[1])  # Traditional and Simplified: the same tokens, the same clip
    for prompt, clip in zip(prompts, clips, strict=True):
        obs = checker.check(clip)
        objs = [(o.colour, o.shape, o.count, o.direction) for s in obs.shots for o in s.objects]
        assert objs == [("red", "circle", 1, "left")], (prompt, objs)


@pytest.mark.slow
def test_train_text_smoke_resumes_and_writes_the_pair(tmp_path):
    """A run resumes its own checkpoint and ends with the DiT unchanged beside the text encoder whose
    English rows are the shipped ones and whose Chinese rows are new."""
    import torch
    from safetensors.torch import load_file

    from trustframe.generator import train_text
    from trustframe.weights import load_checkpoint

    out = tmp_path / "run"
    argv = ["--minutes", "0.03", "--clips", "4", "--batch", "2", "--pool-batch", "4", "--eval-n", "4",
            "--threads", "1", "--out", str(out)]
    first = train_text.main(argv)
    result = train_text.main([*argv, "--minutes", "0.06"])
    run = out / "tfdit-s"
    assert result["steps"] > first["steps"] >= 1
    assert result["weights"] == [str(run / "tfdit-s.safetensors"), str(run / "tfdit-s-text.safetensors")]
    assert 0 < result["metrics"]["pooled_cosine_chinese_vs_english"] <= 1
    card = json.loads((run / "tfdit-s-text.json").read_text())
    assert card["english"]["english_encodings_identical"] is True and card["kind"] == "text-encoder"
    assert not {"command", "commands", "log", "train_config", "final"} & set(card)
    assert len(json.dumps(card)) < 12_000
    shipped = load_checkpoint("generator", "tfdit-s")
    dit = load_file(str(run / "tfdit-s.safetensors"))
    assert all(torch.equal(dit[k], v) for k, v in shipped.state_dict.items())
    text = load_file(str(run / "tfdit-s-text.safetensors"))["embed.weight"]
    assert torch.equal(text[:ENGLISH_WORDS], load_checkpoint("generator", "tfdit-s-text")
                       .state_dict["embed.weight"][:ENGLISH_WORDS])


@pytest.mark.slow
def test_cli_and_api_warn_about_unknown_words(run_cli, home, tmp_path):
    import trustframe

    r = trustframe.generate("a green square near a lighthouse", tmp_path / "a.png", settings=home, frames=1,
                            steps=2, upscale=1)
    assert r.unknown_words == ("near", "lighthouse") and "'lighthouse'" in r.warning and r.path.exists()
    prompt = "一個綠色的方塊在燈塔旁邊"
    code, out, err = run_cli("generate", prompt, "-o", str(tmp_path / "b.png"), "--frames", "1",
                             "--steps", "2",
                             "--upscale", "1", "--json")
    assert code == 0 and "warning: words not understood" in err
    assert json.loads(out)["unknown_words"] == ["灯塔旁边"]
