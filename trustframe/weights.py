"""Shipped weights: safetensors + a JSON model card, loaded without unpickling.

Each component keeps its presets in `<component>/weights/<name>.safetensors` beside
`<name>.json` (the card: config, the exact training command, data, commit, metrics).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from trustframe.errors import ConfigError


@dataclass(frozen=True)
class Checkpoint:
    name: str
    card: dict  # the model card; card["config"] holds the constructor arguments
    state_dict: dict  # name -> torch.Tensor
    path: Path

    @property
    def card_sha256(self) -> str:
        """SHA-256 of the card file's bytes (the generator's manifest cites it)."""
        return hashlib.sha256(self.path.with_suffix(".json").read_bytes()).hexdigest()

    @property
    def command(self) -> str:
        """The command that makes these weights: a recipe's (a card the recipe exported keeps it under
        `recipe`), else the training run's own; "" when the card names neither."""
        recipe = self.card.get("recipe")
        return (recipe.get("command") if isinstance(recipe, dict) else "") or self.card.get("command", "")


def weights_dir(component: str) -> Path:
    """`trustframe.<component>`'s shipped weights folder."""
    return Path(str(resources.files(f"trustframe.{component}") / "weights"))


def presets(component: str, kind: str | None = None) -> list[str]:
    """`component`'s shipped presets; with `kind`, only those whose card says they are one (a card
    without a kind is the component's own: the detector's folder also ships its autoencoders)."""
    d = weights_dir(component)
    cards = sorted(d.glob("*.json")) if d.is_dir() else []
    return [p.stem for p in cards if kind is None or json.loads(p.read_text()).get("kind", component) == kind]


def load_checkpoint(component: str, name: str, kind: str | None = None) -> Checkpoint:
    """Load preset `name` of `component` (safetensors; never pickle); `kind` narrows the presets
    a missing one's error lists."""
    from safetensors.torch import load_file

    d = weights_dir(component)
    card_path, tensors = d / f"{name}.json", d / f"{name}.safetensors"
    if not card_path.is_file() or not tensors.is_file():
        have = ", ".join(presets(component, kind)) or "none"
        raise ConfigError(f"no {component} preset {name!r} (shipped: {have})")
    return Checkpoint(name, json.loads(card_path.read_text()), load_file(str(tensors)), tensors)


def save_checkpoint(path: Path, state_dict: dict, card: dict) -> None:
    """Write `<path>.safetensors` and `<path>.json` (the model card)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = path.with_suffix(".safetensors")
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tensors))
    tensors.chmod(0o644)  # shipped package data, not a secret
    path.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
