"""The Typer application that every command module registers itself on."""

import typer

app = typer.Typer(
    name="uniad-edge",
    help="UniAD anomaly detection: train, export to ONNX/TensorRT, run on cameras, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Train, export, run and benchmark UniAD anomaly detectors."""
