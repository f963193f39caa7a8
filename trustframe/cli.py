"""`trustframe`: the command-line root. Commands live with their components and mount here.

Exit codes (documented in the README):
  0  success (every file audited)          3  some input could not be read (audit: label "error")
  1  a file matched `audit --fail-on`      4  signing failed
  2  usage or configuration error          5  the generator refused the prompt (policy)
"""

from __future__ import annotations

import sys

import typer

from trustframe import __version__
from trustframe.errors import TrustFrameError

app = typer.Typer(
    name="trustframe",
    help="Was this made by an AI, and can we prove it? Sign, watermark and audit images and video.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trustframe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Data directory: ~/.trustframe, or $TRUSTFRAME_HOME. Settings: config.toml there, then
    TRUSTFRAME_* environment variables, then flags."""


def _mount() -> None:
    from trustframe.service import cli as service_cli

    service_cli.register(app)
    from trustframe.generator.cli import generate

    app.command()(generate)
    from trustframe.detector.cli import register as register_detector

    register_detector(app)
    try:
        from trustframe.watermark.cli import app as watermark_app
    except ImportError:  # the watermark component is not installed in this build
        return
    app.add_typer(watermark_app, name="watermark", help="Embed or detect the invisible watermark.")


_mount()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns TrustFrameError into one line on stderr and its exit code."""
    try:
        app(args=argv, prog_name="trustframe")
    except TrustFrameError as e:
        typer.echo(f"trustframe: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("trustframe: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
