"""Recipes: how each shipped model is trained, as a small declarative file beside its weights.

    python -m trustframe.generator.train --recipe tfvae-f4c8 [--scale 0.05] [--export]
    python -m trustframe.watermark.train --recipe tfwm-base
    python -m trustframe.detector.train --recipe tfdet-s --export

`<component>/weights/<model>.recipe.toml`:

    model = "tfvae-f4c8"                         # the weights it makes (and its run folder runs/<model>/)
    trainer = "trustframe.generator.train_vae"  # a module whose main(argv) trains one stage
    data = "what the model is trained on"       # copied into the card

    [[stage]]
    name = "base"                   # unique; later stages refer to it
    minutes = 27                    # the run's wall-clock budget (its lr schedule follows it)
    flags = { refine_blocks = 0 }   # the trainer's flags (`lr = 5e-4` -> `--lr 5e-4`, `x = true` -> `--x`)

    [[stage]]
    name = "decoder"
    init_from = "base"              # a new run, started from that stage's weights
    minutes = 60
    flags = { decoder_only = true, fg_weight = 4, lr = 5e-4 }

    [[stage]]
    name = "decoder-long"
    resume = true                   # continue the previous stage's run (its state.pt): `minutes` is the
    minutes = 90                    # run's budget so far, `until` (optional) stops it early at that minute
    flags = { decoder_only = true, fg_weight = 4, lr = 5e-4 }

A stage may name its own `trainer` (a module with the same contract as the recipe's), or a `module` that
is not a trainer (e.g. the detector's data command) with `minutes_flag`, the flag its minutes go to;
string flags may say "{runs}", the recipe's run folder. Stages run in order, each by calling its
module's `main(argv)` in this process; finished stages are recorded in
runs/<model>/recipe-state.json, so a rerun starts at the first unfinished stage (which itself resumes
from its checkpoint). `--scale X` multiplies every stage's minutes (a quick rebuild at another scale
goes to another folder: runs/<model>-x<scale>/). `--export` copies the last stage's weights with a flat
card (the recipe, the data, each stage's metrics, the commit) into the component's weights folder; weights
that stage writes beside the model's (the DiT's text encoder) go with it, their cards naming the recipe
and the stage.
Anything else on the command line (`--clips 16`) goes to every trainer stage; `--set STAGE.flag=value`
to one stage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

STATE_FILE = "recipe-state.json"


@dataclass
class Stage:
    name: str
    minutes: float = 0.0
    flags: dict = field(default_factory=dict)
    init_from: str = ""  # an earlier stage's name (its weights), or a shipped preset; "" = from scratch
    resume: bool = False  # continue the previous stage's run
    until: float = 0.0  # stop the run at this minute (0 = at `minutes`)
    trainer: str = ""  # this stage's trainer, when not the recipe's (same contract: RunConfig flags, result)
    module: str = ""  # a command that is not a trainer (e.g. the data): only its flags and minutes
    minutes_flag: str = "minutes"  # the flag a `module` stage's minutes go to


@dataclass
class Recipe:
    model: str
    trainer: str
    stages: list[Stage]
    data: str = ""
    path: Path | None = None
    notes: str = ""

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def run_of(self, i: int) -> str:
        """The run a stage trains in: the name of the first stage of its chain of resumes."""
        while self.stages[i].resume:
            i -= 1
        return self.stages[i].name


def recipe_path(component: str, name: str) -> Path:
    """A recipe's file: `name` itself when it is a .toml path, else <component>/weights/<name>.recipe.toml."""
    if name.endswith(".toml"):
        return Path(name)
    from trustframe.weights import weights_dir

    return weights_dir(component) / f"{name}.recipe.toml"


def load_recipe(path: Path | str) -> Recipe:
    path = Path(path)
    if not path.is_file():
        have = ", ".join(sorted(p.name.removesuffix(".recipe.toml")
                                for p in path.parent.glob("*.recipe.toml")))
        raise SystemExit(f"no recipe {path} (recipes there: {have or 'none'})")
    raw = tomllib.loads(path.read_text())
    known = set(Stage.__dataclass_fields__)
    stages = []
    for i, st in enumerate(raw.get("stage", [])):
        unknown = set(st) - known
        if unknown:
            raise SystemExit(f"{path}: stage {i + 1} has unknown keys {sorted(unknown)} "
                             f"(known: {sorted(known)})")
        stages.append(Stage(**st))
    recipe = Recipe(model=raw["model"], trainer=raw["trainer"], stages=stages, data=raw.get("data", ""),
                    path=path, notes=raw.get("notes", ""))
    seen: set[str] = set()
    for i, st in enumerate(stages):
        if st.name in seen:
            raise SystemExit(f"{path}: two stages are named {st.name!r}")
        if st.resume and (i == 0 or st.init_from or stages[i - 1].module):
            raise SystemExit(f"{path}: stage {st.name!r} resumes, so it needs a training stage before it "
                             "and no init_from of its own")
        if st.init_from and st.init_from not in seen and st.init_from in {s.name for s in stages}:
            raise SystemExit(f"{path}: stage {st.name!r} starts from {st.init_from!r}, which comes later")
        seen.add(st.name)
    if not stages:
        raise SystemExit(f"{path}: no [[stage]]")
    return recipe


def as_flags(flags: dict, runs: Path) -> list[str]:
    """{"fg_weight": 4, "decoder_only": True} -> ["--fg-weight", "4", "--decoder-only"]."""
    out = []
    for k, v in flags.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
        else:
            out += [flag, str(v).replace("{runs}", str(runs))]
    return out


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def stage_argv(recipe: Recipe, i: int, runs: Path, scale: float, done: dict, extra: list[str],
               overrides: dict) -> list[str]:
    """The argv of stage i's `main`."""
    st = recipe.stages[i]
    flags = {**st.flags, **overrides.get(st.name, {})}
    if st.module:  # another command (data): its own flags, its minutes scaled
        argv = as_flags(flags, runs)
        if st.minutes:
            argv += [f"--{st.minutes_flag.replace('_', '-')}", _fmt(st.minutes * scale)]
        return argv
    head = recipe.stage(recipe.run_of(i))
    argv = as_flags(flags, runs) + ["--name", recipe.model, "--out", str(runs / recipe.run_of(i)),
                                     "--minutes", _fmt(st.minutes * scale)]
    if st.until:
        argv += ["--stop-at", _fmt(st.until * scale)]
    if head.init_from:
        if head.init_from in done:
            argv += ["--init-from", done[head.init_from]["weights"][0]]
        elif any(s.name == head.init_from for s in recipe.stages):
            raise SystemExit(f"stage {st.name!r} starts from {head.init_from!r}, which has not run")
        else:
            argv += ["--init-from", head.init_from]  # a shipped preset
    return argv + extra


def runs_dir(recipe: Recipe, scale: float, root: Path | str = "runs") -> Path:
    return Path(root) / (recipe.model if scale == 1 else f"{recipe.model}-x{_fmt(scale)}")


def run_recipe(recipe: Recipe | Path | str, scale: float = 1.0, root: Path | str = "runs",
               export: bool = False, export_dir: Path | str | None = None, extra: list[str] | None = None,
               overrides: dict | None = None, component: str = "") -> dict:
    """Run the stages not yet finished, in order; returns the recipe state (per stage: argv, weights,
    steps, minutes, metrics). With `export`, the last stage's weights go to `export_dir` (default: the
    component's weights folder) with a flat card."""
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise SystemExit("a recipe runs in one process; run a single stage's command under torchrun instead")
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    extra, overrides = list(extra or []), overrides or {}
    runs = runs_dir(recipe, scale, root)
    runs.mkdir(parents=True, exist_ok=True)
    state_path = runs / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    settings = {"recipe": recipe.model, "scale": scale, "extra": extra, "overrides": overrides}
    if state and {k: state.get(k) for k in settings} != settings:
        raise SystemExit(f"{runs} holds a run of {state.get('recipe')} at scale {state.get('scale')} with "
                         f"{state.get('extra')} {state.get('overrides')}: rerun it as it was, or use "
                         "another --runs")
    state = {**settings, "stages": state.get("stages", {})}
    done = state["stages"]
    for i, st in enumerate(recipe.stages):
        if st.name in done:
            print(f"[{recipe.model}] stage {i + 1}/{len(recipe.stages)} {st.name}: done", flush=True)
            continue
        argv = stage_argv(recipe, i, runs, scale, done, [] if st.module else extra, overrides)
        module = st.module or st.trainer or recipe.trainer
        print(f"[{recipe.model}] stage {i + 1}/{len(recipe.stages)} {st.name}: python -m {module} "
              + " ".join(argv), flush=True)
        result = importlib.import_module(module).main(argv) or {}
        done[st.name] = {"run": "" if st.module else recipe.run_of(i), "argv": argv, **result}
        state_path.write_text(json.dumps(state, indent=1) + "\n")
    if export:
        export_recipe(recipe, state, component or recipe.trainer.split(".")[1], export_dir)
    return state


def stage_summary(recipe: Recipe, done: dict) -> list[dict]:
    """Per stage, flat: its flags and start, and what it measured."""
    out = []
    for st in recipe.stages:
        r = done.get(st.name, {})
        row = {"name": st.name, "minutes": st.minutes,
               "start": "resume" if st.resume else (st.init_from or "scratch"), "flags": st.flags}
        if st.module:
            row = {"name": st.name,
                   "command": f"python -m {st.module} " + " ".join(as_flags(st.flags, Path("runs")))}
        if st.until:
            row["until"] = st.until
        row.update({k: r[k] for k in ("steps", "train_minutes", "metrics") if k in r})
        out.append(row)
    return out


RUN_FIELDS = ("command", "train_config", "log", "training", "final")  # a run's own: not in an exported card


def recipe_reference(recipe: Recipe, state: dict) -> dict:
    """What an exported card says of the recipe that made it."""
    return {"name": recipe.model, "file": recipe.path.name if recipe.path else "", "scale": state["scale"],
            "command": f"python -m {recipe.trainer} --recipe {recipe.model}"
                       + (f" --scale {_fmt(state['scale'])}" if state["scale"] != 1 else "")}


def recipe_card(recipe: Recipe, state: dict, card: dict) -> dict:
    """`card` (the last stage's) made flat: its own training fields replaced by the recipe's stages."""
    from trustframe.training import git_commit

    done = state["stages"]
    runs: dict[str, dict] = {}
    for i, st in enumerate(recipe.stages):  # a run's totals are its last stage's
        if not st.module and st.name in done:
            runs[recipe.run_of(i)] = done[st.name]
    card = {k: v for k, v in card.items() if k not in RUN_FIELDS}
    card.update(
        recipe={**recipe_reference(recipe, state), "stages": stage_summary(recipe, done)},
        steps=sum(r.get("steps", 0) for r in runs.values()),
        train_minutes=round(sum(r.get("train_minutes", 0) for r in runs.values()), 1),
        commit=git_commit())
    if recipe.data:
        card["data"] = recipe.data
    return card


def export_recipe(recipe: Recipe, state: dict, component: str, export_dir=None) -> list[Path]:
    from trustframe.training import export

    last = state["stages"][recipe.stages[-1].name]
    weights = [Path(w) for w in last["weights"]]
    cards = [json.loads(w.with_suffix(".json").read_text()) for w in weights]
    cards[0] = recipe_card(recipe, state, cards[0])
    for i, card in enumerate(cards[1:], 1):  # the weights that ship beside the model (a text encoder)
        cards[i] = {**{k: v for k, v in card.items() if k not in RUN_FIELDS},
                    "recipe": {**recipe_reference(recipe, state), "stage": recipe.stages[-1].name}}
    return export(component, weights, export_dir, cards)


def wants_recipe(argv: list[str] | None) -> bool:
    args = sys.argv[1:] if argv is None else argv
    return any(a == "--recipe" or a.startswith("--recipe=") for a in args)


def cli(component: str, argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="Train a shipped model from its recipe, stage by stage.")
    p.add_argument("--recipe", required=True, help="model name (its <name>.recipe.toml in the weights "
                                                   "folder) or a .toml path")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every stage's minutes")
    p.add_argument("--runs", default="runs", help="folder of the runs (the recipe's is <runs>/<model>)")
    p.add_argument("--export", action="store_true", help="copy the result + a flat card into the weights")
    p.add_argument("--export-dir", default="", help="export here instead of the component's weights folder")
    p.add_argument("--set", action="append", default=[], metavar="STAGE.FLAG=VALUE",
                   help="a flag of one stage (repeatable)")
    args, extra = p.parse_known_args(argv)
    overrides: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        stage, _, flag = key.partition(".")
        if not flag or not _:
            raise SystemExit(f"--set takes STAGE.FLAG=VALUE, got {item!r}")
        overrides.setdefault(stage, {})[flag.replace("-", "_")] = value
    return run_recipe(recipe_path(component, args.recipe), args.scale, args.runs, args.export,
                      args.export_dir or None, extra, overrides, component)
