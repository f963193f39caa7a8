"""Recipes: each shipped model's stages in a file beside its weights, run in order and resumable, and a
rebuild of each at a tiny scale makes weights of the shipped network's shape."""

from __future__ import annotations

import importlib
import json
import textwrap

import pytest

from trustframe.recipes import load_recipe, recipe_path, run_recipe, stage_argv
from trustframe.training import parse_config
from trustframe.weights import load_checkpoint

SHIPPED = {  # recipe -> (component, the weights it makes)
    "tfvae-f4c8": ("generator", ["tfvae-f4c8"]),
    "tfdit-s": ("generator", ["tfdit-s", "tfdit-s-text"]),
    "tfwm-base": ("watermark", ["tfwm-base"]),
    "tfdet-s": ("detector", ["tfdet-s"]),
}

FAKE_TRAINER = '''
import json, os
from pathlib import Path

def main(argv):
    """Records its argv; fails once when asked to (an interrupted stage)."""
    log = Path(os.environ["FAKE_LOG"])
    calls = json.loads(log.read_text()) if log.is_file() else []
    calls.append(argv)
    log.write_text(json.dumps(calls))
    args = dict(zip(argv[::2], argv[1::2]))
    out = Path(args["--out"]) / args["--name"]
    out.mkdir(parents=True, exist_ok=True)
    if args.get("--lr") == os.environ.get("FAKE_FAIL_LR"):
        raise KeyboardInterrupt
    w = out / (args["--name"] + ".safetensors")
    w.write_bytes(b"")
    w.with_suffix(".json").write_text(json.dumps({"name": args["--name"], "config": {"a": 1},
                                                  "command": "x", "log": [1, 2]}))
    return {"weights": [str(w)], "steps": 10, "train_minutes": float(args["--minutes"]),
            "metrics": {"loss": float(args["--lr"])}}
'''


def fake_recipe(tmp_path, monkeypatch):
    (tmp_path / "fake_trainer.py").write_text(FAKE_TRAINER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.json"))
    path = tmp_path / "toy.recipe.toml"
    path.write_text(textwrap.dedent("""
        model = "toy"
        trainer = "fake_trainer"
        data = "nothing at all"

        [[stage]]
        name = "a"
        minutes = 10
        flags = { lr = 1 }

        [[stage]]
        name = "b"
        init_from = "a"
        minutes = 20
        flags = { lr = 2 }

        [[stage]]
        name = "c"
        resume = true
        minutes = 30
        until = 25
        flags = { lr = 3 }
    """))
    return path


def test_a_recipe_runs_its_stages_in_order_and_resumes_at_the_first_unfinished_one(tmp_path, monkeypatch):
    path = fake_recipe(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_FAIL_LR", "2")
    with pytest.raises(KeyboardInterrupt):
        run_recipe(path, scale=0.5, root=tmp_path / "runs")
    state = json.loads((tmp_path / "runs" / "toy-x0.5" / "recipe-state.json").read_text())
    assert list(state["stages"]) == ["a"]  # b was interrupted: not recorded as done

    monkeypatch.setenv("FAKE_FAIL_LR", "none")
    state = run_recipe(path, scale=0.5, root=tmp_path / "runs", export=True, export_dir=tmp_path / "w",
                       component="generator")
    calls = json.loads((tmp_path / "calls.json").read_text())
    assert [c[1] for c in calls] == ["1", "2", "2", "3"]  # a; b interrupted; b again; c (a not rerun)
    runs = tmp_path / "runs" / "toy-x0.5"
    a, b_retry, c = (dict(zip(x[::2], x[1::2], strict=True)) for x in (calls[0], calls[2], calls[3]))
    assert a["--minutes"] == "5" and a["--out"] == str(runs / "a") and "--init-from" not in a
    assert b_retry["--init-from"] == str(runs / "a" / "toy" / "toy.safetensors")
    # c continues b's run (same folder, same start), its budget and stop scaled
    assert c["--out"] == b_retry["--out"] == str(runs / "b") and c["--init-from"] == b_retry["--init-from"]
    assert (c["--minutes"], c["--stop-at"]) == ("15", "12.5")
    assert list(state["stages"]) == ["a", "b", "c"]

    card = json.loads((tmp_path / "w" / "toy.json").read_text())  # flat: the recipe replaces the run's own
    assert "command" not in card and "log" not in card and card["config"] == {"a": 1}
    assert card["data"] == "nothing at all" and card["recipe"]["name"] == "toy"
    assert [s["name"] for s in card["recipe"]["stages"]] == ["a", "b", "c"]
    assert [s["start"] for s in card["recipe"]["stages"]] == ["scratch", "a", "resume"]
    assert card["recipe"]["stages"][2]["metrics"] == {"loss": 3.0}
    assert card["steps"] == 20  # runs a and b (c's steps are b's run's)

    # a finished recipe reruns nothing; another scale in the same folder is refused
    run_recipe(path, scale=0.5, root=tmp_path / "runs")
    assert len(json.loads((tmp_path / "calls.json").read_text())) == 4
    (runs / "recipe-state.json").write_text(json.dumps({**state, "scale": 0.25}))
    with pytest.raises(SystemExit, match="scale"):
        run_recipe(path, scale=0.5, root=tmp_path / "runs")


def test_a_recipe_that_starts_from_a_later_stage_or_resumes_nothing_is_refused(tmp_path):
    bad = tmp_path / "bad.recipe.toml"
    bad.write_text('model = "x"\ntrainer = "y"\n[[stage]]\nname = "a"\nresume = true\nminutes = 1\n')
    with pytest.raises(SystemExit, match="resumes"):
        load_recipe(bad)
    bad.write_text('model = "x"\ntrainer = "y"\n[[stage]]\nname = "a"\ninit_from = "b"\nminutes = 1\n'
                   '[[stage]]\nname = "b"\nminutes = 1\n')
    with pytest.raises(SystemExit, match="later"):
        load_recipe(bad)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_has_a_recipe_whose_flags_its_trainer_takes(name, tmp_path):
    component, weights = SHIPPED[name]
    recipe = load_recipe(recipe_path(component, name))
    assert recipe.model == weights[0]
    done = {s.name: {"weights": [str(tmp_path / f"{s.name}.safetensors")]} for s in recipe.stages}
    for i, st in enumerate(recipe.stages):
        module = importlib.import_module(st.module or st.trainer or recipe.trainer)
        argv = stage_argv(recipe, i, tmp_path, 1.0, done, [], {})
        if st.module:
            continue  # another command's own argparse (the detector's data)
        cfg, _ = parse_config(module.TrainConfig, argv, module.__name__, "")
        assert cfg.minutes == st.minutes and cfg.name == recipe.model


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_cards_are_flat_and_name_their_recipe(name):
    component, weights = SHIPPED[name]
    recipe = load_recipe(recipe_path(component, name))
    stages = [s.name for s in recipe.stages]
    for i, w in enumerate(weights):
        path = load_checkpoint(component, w).path.with_suffix(".json")
        card = json.loads(path.read_text())
        assert path.stat().st_size < 16_000, f"{path.name} is {path.stat().st_size} bytes"
        assert card["recipe"]["name"] == name and card["commit"]
        assert card["recipe"]["file"] == recipe.path.name
        for key in ("init_from", "command", "commands", "log", "train_config", "training", "final"):
            assert key not in card, (w, key)
        if i == 0:  # the model's card holds the stages behind its weights: the recipe's, or its first
            names = [s["name"] for s in card["recipe"]["stages"]]  # ones while a next stage is training
            assert names == stages[: len(names)] and len(names) >= 2
            assert all("steps" in s for s in card["recipe"]["stages"] if "command" not in s)
        else:  # weights shipped beside it (a text encoder) name the stage that made them
            assert card["recipe"]["stage"] in stages and "stages" not in card["recipe"]


# --- rebuilds at a tiny scale: seconds per stage, the shipped networks' shapes ------------------------
REBUILDS = {  # recipe -> (scale, flags for every training stage, {trainer: flags for its stages})
    "tfvae-f4c8": (0.001, ["--crop-batch", "2", "--eval-clips", "2", "--threads", "1"], {}),
    "tfdit-s": (0.0003, ["--threads", "1"], {
        "trustframe.generator.train_dit": {"clips": 16, "captions_per_clip": 1, "batch": 2, "pairs": 4,
                                           "pair_batch": 2, "bf16": False},
        "trustframe.generator.train_text": {"clips": 4, "batch": 2, "pool_batch": 4, "eval_n": 2}}),
    "tfwm-base": (0.001, ["--pool", "8", "--batch", "2", "--patch", "64", "--out-px", "48", "--keys", "2",
                          "--threads", "1"], {}),
    "tfdet-s": (0.002, ["--batch", "8", "--threads", "1"], {}),
}


def tiny_detector_data(runs) -> None:
    """The detector recipe's data stage, done: random pairs in its format (making real ones takes about a
    minute even at toy size; tests/test_detector.py runs that command)."""
    import numpy as np

    from trustframe.detector.data import FRAMES, STORE_PX

    rng = np.random.default_rng(0)
    (runs / "data").mkdir(parents=True)
    for split, n in (("train", 8), ("calibration", 8)):
        clips = {k: rng.integers(0, 256, (n, FRAMES, STORE_PX, STORE_PX, 3), dtype=np.uint8)
                 for k in ("real", "fake")}
        np.savez(runs / "data" / f"{split}.npz", **clips, decoder=np.arange(n) % 4,
                 codec=np.array(["none"] * n), scale=np.ones(n, np.float32))
    settings = {"recipe": "tfdet-s", "scale": REBUILDS["tfdet-s"][0], "extra": REBUILDS["tfdet-s"][1],
                "overrides": {}}
    (runs / "recipe-state.json").write_text(json.dumps({**settings, "stages": {"data": {}}}))


def same_shapes(built: dict, shipped: dict, vocab_dependent: tuple[str, ...] = ()) -> None:
    assert sorted(built) == sorted(shipped)
    for k, v in shipped.items():
        if k in vocab_dependent:
            assert built[k].shape[1:] == v.shape[1:], k
        else:
            assert built[k].shape == v.shape, k


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REBUILDS))
def test_a_recipe_rebuilds_the_shipped_network_at_a_tiny_scale(name, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from trustframe.generator.captions_zh import has_cjk
    from trustframe.training import load_weights

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    component, weights = SHIPPED[name]
    scale, extra, by_trainer = REBUILDS[name]
    recipe = load_recipe(recipe_path(component, name))
    overrides = {s.name: by_trainer[s.trainer or recipe.trainer] for s in recipe.stages
                 if (s.trainer or recipe.trainer) in by_trainer}
    if name == "tfdet-s":
        tiny_detector_data(tmp_path / "runs" / f"tfdet-s-x{scale:g}")
    state = run_recipe(recipe_path(component, name), scale=scale, root=tmp_path / "runs", export=True,
                       export_dir=tmp_path / "weights", extra=extra, overrides=overrides,
                       component=component)
    assert list(state["stages"]) == [s.name for s in recipe.stages]
    for w in weights:
        shipped = load_checkpoint(component, w)
        built = load_file(str(tmp_path / "weights" / f"{w}.safetensors"))
        # the text encoder's vocabulary comes from the captions it saw: only its embedding's rows differ
        vocab_dependent = ("embed.weight",) if w.endswith("-text") else ()
        same_shapes(built, shipped.state_dict, vocab_dependent)
        card = json.loads((tmp_path / "weights" / f"{w}.json").read_text())
        assert card["config"] == {**shipped.card["config"], **({"vocab": card["config"]["vocab"]}
                                                              if w.endswith("-text") else {})}
        loaded = load_weights(component, str(tmp_path / "weights" / f"{w}.safetensors"))  # loads as shipped
        assert loaded.card["name"] == w and card["recipe"]["name"] == name
        assert loaded.command == card["recipe"]["command"]  # what a data record cites for these weights
        assert not {"command", "log", "train_config", "final"} & set(card)  # flat, like the shipped ones
        if w.endswith("-text"):  # its Chinese rows too: the shipped Chinese words, after English ones
            vocab, shipped_vocab = card["config"]["vocab"], shipped.card["config"]["vocab"]
            english = [v for v in vocab if not has_cjk(v)]
            assert vocab[len(english):] == [v for v in shipped_vocab if has_cjk(v)]
            assert set(english) <= set(shipped_vocab) and card["recipe"]["stage"] == recipe.stages[-1].name
    card = json.loads((tmp_path / "weights" / f"{weights[0]}.json").read_text())
    assert card["recipe"]["scale"] == scale and len(card["recipe"]["stages"]) == len(recipe.stages)
