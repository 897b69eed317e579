"""Which models the set metrics (``gankit evaluate``) and the memorisation check (``gankit
neighbors``) can score: generators of single images from noise. The others are refused here, in
one place, with the tool that does score them; the report asks the same question before it
suggests either command."""

from __future__ import annotations

from gankit.errors import GankitError


def unscorable_reason(model) -> str | None:
    """Why ``model`` (a :class:`gankit.model.Model`) has no set of samples to compare with a set of
    real images, or None when it has."""
    config, family_cls = model.config, getattr(model, "family_cls", None)
    if not getattr(config, "channels", 0):
        return ("this run generates 2-D points: measure those with the mode-coverage benchmark "
                "(gankit bench modes)")
    if family_cls is None:  # a model-like object of the user's: judged by its samples
        return None
    if getattr(family_cls, "single_image", False):
        return (f"{model.family} learns one picture: score it with gankit.metrics.single_image (SIFID, "
                f"patch SWD, diversity) or bench/singan_budget.py, not with set metrics")
    if family_cls.translates:
        return (f"{model.family} maps images to images: score its outputs against their targets "
                f"(gankit {family_cls.apply_command} ... --reference, or the family's bench/ script), "
                f"not with set metrics of samples")
    shape = tuple(family_cls.output_shape(config))
    square = (int(config.channels), int(config.resolution), int(config.resolution))
    if shape != square:
        return (f"{model.family} makes {shape[2]}x{shape[1]} samples ({shape[2] // shape[1]} images side by side, "
                f"one per domain), not {square[2]}x{square[1]} images: score its pairs with bench/cogan_pairs.py")
    return None


def require_sample_sets(model) -> None:
    """GankitError with :func:`unscorable_reason` for a model the set metrics cannot score."""
    reason = unscorable_reason(model)
    if reason is not None:
        raise GankitError(reason)
