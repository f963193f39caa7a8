"""Train a shipped generator model from its recipe (generator/weights/<model>.recipe.toml).

    python -m trustframe.generator.train --recipe tfvae-f4c8 [--scale 0.05] [--export]
    python -m trustframe.generator.train --recipe tfdit-s --export     # the DiT and its text encoder

The recipe names its trainer (`trustframe.generator.train_vae` or `train_dit`; a stage may name its own:
the tfdit-s recipe's last stage, the text encoder's Chinese rows, is `train_text`), whose `main` runs
each stage in turn (`trustframe.recipes`). One run with hand-given flags: call the trainer module itself.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> dict:
    from trustframe.recipes import cli, wants_recipe

    args = sys.argv[1:] if argv is None else argv
    if not wants_recipe(args) and not any(a in ("-h", "--help") for a in args):
        raise SystemExit("give --recipe NAME (tfvae-f4c8, tfdit-s); for one run with your own flags use "
                         "python -m trustframe.generator.train_vae / train_dit / train_text")
    return cli("generator", args)


if __name__ == "__main__":
    main()
