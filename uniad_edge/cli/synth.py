"""`uniad-edge synth`: write the built-in synthetic dataset (MVTec layout) for a quick demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.synth import generate
from .app import app
from .options import counting_bar, default, defaults, given

SIZE_OPTIONS = ("classes", "train_per_class", "test_per_class", "size", "seed")


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Folder to create (MVTec layout).")],
    classes: Annotated[
        int | None,
        typer.Option(help="Number of classes (1-6).", show_default=default(generate, "classes")),
    ] = None,
    train_per_class: Annotated[
        int | None,
        typer.Option(
            help="Good training images per class.",
            show_default=default(generate, "train_per_class"),
        ),
    ] = None,
    test_per_class: Annotated[
        int | None,
        typer.Option(
            help="Test images per class, about half defective.",
            show_default=default(generate, "test_per_class"),
        ),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option(help="Image side in pixels.", show_default=default(generate, "size")),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Random seed; the same seed gives identical files.",
            show_default=default(generate, "seed"),
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Replace a synthetic dataset already at --out.")
    ] = False,
) -> None:
    """Generate a synthetic anomaly dataset: textures and objects with masked defects."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    chosen = given(
        classes=classes,
        train_per_class=train_per_class,
        test_per_class=test_per_class,
        size=size,
        seed=seed,
    )
    base = defaults(generate)
    settings = {key: chosen.get(key, base[key]) for key in SIZE_OPTIONS}
    console = Console()
    total = settings["classes"] * (settings["train_per_class"] + settings["test_per_class"])
    with counting_bar(console) as bar:
        task = bar.add_task("rendering", total=total)
        summary = generate(
            out,
            **settings,
            force=force,
            progress=lambda name: bar.update(task, advance=1, description=f"rendering {name}"),
        )
    title = f"synthetic dataset: {summary.root} ({settings['size']}px, seed {settings['seed']})"
    table = Table(title=escape(title))
    for column in ("class", "train", "test good", "test defective", "defect kinds"):
        table.add_column(column, justify="left" if column in ("class", "defect kinds") else "right")
    for row in summary.rows:
        table.add_row(
            str(row["class"]),
            str(row["train"]),
            str(row["test_good"]),
            str(row["test_defective"]),
            ", ".join(row["defects"]),
        )
    console.print(table)
    console.print(escape(f"wrote {summary.images} images to {summary.root}"))
