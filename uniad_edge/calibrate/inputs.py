"""Checks of the calibration images themselves, whose problems a threshold silently inherits:
unreadable files (all named at once, not one per attempt), images the model cannot judge
(`runtime.frame_fit`: far too small or too stretched) and one image labelled both good and
defective."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from ..data import Sample
from ..errors import UniadError
from ..fileio import sha256_file

SHOWN = 5  # examples named in a warning; an error names every file


def unreadable_error(paths: Sequence[Path]) -> UniadError:
    """One error naming every image that could not be decoded."""
    return UniadError(
        f"{len(paths)} image(s) cannot be read: {', '.join(map(str, paths))}; replace them with "
        "valid PNG/JPEG files or delete them: nothing was written"
    )


def unfit_note(unfit: Sequence[tuple[Path, str]], total: int) -> str | None:
    """A warning for images the model cannot judge (their scores say nothing), or None."""
    if not unfit:
        return None
    shown = "; ".join(f"{path}: {reason}" for path, reason in unfit[:SHOWN])
    more = f" and {len(unfit) - SHOWN} more" if len(unfit) > SHOWN else ""
    return (
        f"{len(unfit)} of {total} images are not what the model can judge ({shown}{more}): "
        "their scores say nothing, and a threshold set on them will not hold on camera frames"
    )


def contradictory_labels(samples: Sequence[Sample]) -> str | None:
    """A warning when the same file content is both good and defective (a copy in good/ and
    bad/): the policy would have to call one image both OK and NG."""
    labels: dict[str, dict[int, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for sample in samples:
        if sample.image is None and sample.path.is_file():
            labels[sha256_file(sample.path)][sample.label].append(sample.path)
    both = [found for found in labels.values() if len(found) > 1]
    if not both:
        return None
    pairs = [f"{found[0][0]} = {found[1][0]}" for found in both[:SHOWN]]
    more = f" and {len(both) - SHOWN} more" if len(both) > SHOWN else ""
    return (
        f"{len(both)} image(s) are both good and defective (identical files: "
        f"{', '.join(pairs)}{more}); remove each from the folder where it does not belong"
    )
