"""``gankit prepare``: turn raw pictures into a training set (registered in :mod:`gankit.cli`).

``gankit prepare faces SRC --out DIR`` finds the faces in raw photos and writes one aligned square
crop per face in the FFHQ manner (:mod:`gankit.data.faces`; needs ``pip install 'gankit[faces]'``).
Mounted on the main app as ``app.add_typer(prepare_app, name="prepare")``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from gankit.errors import GankitError

prepare_app = typer.Typer(
    help="Prepare training images from raw pictures (aligned face crops from photos).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

LISTED = 20  # names printed per list; report.json has them all


@prepare_app.callback()
def _prepare() -> None:
    """Prepare training images from raw pictures (aligned face crops from photos)."""


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f", ... and {len(items) - LISTED} more" if len(items) > LISTED else "")


@prepare_app.command("faces")
def faces_cmd(
    src: Path = typer.Argument(..., help="Folder (searched recursively), class folders or .zip of photos."),
    out: Path = typer.Option(..., "--out", help="Output folder for the crops and report.json (new or empty)."),
    size: int = typer.Option(256, "--size", help="Side of the square crops in pixels."),
    largest: bool = typer.Option(False, "--largest", help="Only the largest face of each photo (default: one crop per face)."),
    min_face: float = typer.Option(64, "--min-face", help="Ignore faces smaller than this many pixels across (in the photo)."),
    fmt: str = typer.Option("png", "--format", help="png | jpg (quality 95)."),
    detector: str = typer.Option("hog", "--detector", help="hog (dlib's HOG, searched at 5 turns; 1-3 s a photo on "
                                                          "2 cores) | cnn (dlib's MMOD CNN; finds more faces, about 8x slower)."),
    threshold: float = typer.Option(0.0, "--threshold", help="hog: the detector score a face needs; lower finds more "
                                                             "faces and more things that are not faces (-0.3: 9 % more faces, 20x the false ones)."),
    landmarks: int = typer.Option(5, "--landmarks", help="5 (default; free for any use) | 68 (dlib's 68-point "
                                                        "model: its iBUG 300-W training data excludes commercial use)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Aligned square face crops (eyes level, face centred, a margin) from raw photos, one per face."""
    from gankit.data.faces import REPORT_NAME, prepare_faces

    if landmarks not in (5, 68):
        raise GankitError(f"--landmarks must be 5 or 68, got {landmarks}")
    report = prepare_faces(src, out, size, largest=largest, min_face=min_face, fmt=fmt, detector=detector,
                           landmarks=landmarks, threshold=threshold, progress=not quiet)
    n = len(report.crops)
    typer.echo(f"{n} face crop{'s' * (n != 1)} ({size}x{size}) from {report.photos_with_faces} of "
               f"{report.photos} photo{'s' * (report.photos != 1)} in {report.seconds:.0f}s, written to {out}/")
    if report.no_face:
        typer.echo(f"no face found in {len(report.no_face)} photo{'s' * (len(report.no_face) != 1)}: "
                   f"{_names(report.no_face)}")
    if report.small_faces:
        typer.echo(f"ignored {report.small_faces} face{'s' * (report.small_faces != 1)} smaller than "
                   f"--min-face {min_face:g} px")
    if report.extra_faces:
        typer.echo(f"--largest: left out {report.extra_faces} smaller face{'s' * (report.extra_faces != 1)}")
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)} unreadable file{'s' * (len(report.skipped) != 1)}: "
                   f"{_names([f'{n} ({r})' for n, r in report.skipped])}")
    typer.echo(f"details (every crop's photo, landmarks and square): {out / REPORT_NAME}")
    typer.echo(f"next: gankit train stylegan2 --data {out} --out runs/faces")
