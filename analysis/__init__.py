"""Pure statistics, figures and report text: arrays in, arrays / figures / text out. Nothing here
reads or writes files or knows about models; the commands in `mirrorlab.experiments` do the I/O."""

__all__ = ["measure_mirroring", "MirroringResult", "MeasureSettings"]


def __getattr__(name: str):
    """The public measures, imported on first use: `import mirrorlab.analysis.page` stays light."""
    if name in ("measure_mirroring", "MirroringResult"):
        from mirrorlab.analysis import api

        return getattr(api, name)
    if name == "MeasureSettings":
        from mirrorlab.analysis.measures import MeasureSettings

        return MeasureSettings
    raise AttributeError(f"module 'mirrorlab.analysis' has no attribute {name!r}")
