"""Fonts for plots of product titles in any script (Chinese titles among them).

Matplotlib's default font (DejaVu Sans) has no CJK glyphs, so a Chinese title prints boxes and a
"Glyph missing" warning. :func:`fonts_for` finds, at run time, an installed font that covers the
characters the default font lacks and adds it as a fallback family for the plots drawn inside it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import matplotlib
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

DEFAULT_FAMILY = "DejaVu Sans"

#: Families tried first (common CJK fonts of Linux, macOS and Windows), then every other font.
PREFERRED = (
    "Noto Sans CJK",
    "Noto Sans SC",
    "Source Han Sans",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing",
    "AR PL UKai",
    "PingFang",
    "Hiragino Sans",
    "Microsoft YaHei",
    "SimHei",
    "IPAGothic",
    "Noto Sans JP",
    "Noto Sans KR",
    "NanumGothic",
)


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def missing_characters(texts: Iterable[str], family: str = DEFAULT_FAMILY) -> frozenset[str]:
    """The characters of ``texts`` that ``family`` has no glyph for (whitespace ignored)."""
    path = font_manager.findfont(font_manager.FontProperties(family=family))
    covered = _charmap(path)
    return frozenset(c for text in texts for c in text if not c.isspace() and ord(c) not in covered)


def font_covering(characters: Iterable[str]) -> str | None:
    """The family name of an installed font with a glyph for every one of ``characters``.

    ``None`` when no installed font covers them all (or when ``characters`` is empty).
    """
    needed = {ord(c) for c in characters}
    if not needed:
        return None
    fonts = font_manager.fontManager.ttflist

    def rank(entry: font_manager.FontEntry) -> tuple[int, str]:
        for i, name in enumerate(PREFERRED):
            if entry.name.startswith(name):
                return (i, entry.name)
        return (len(PREFERRED), entry.name)

    for entry in sorted(fonts, key=rank):
        if needed <= _charmap(entry.fname):
            return str(entry.name)
    return None


def plain_label(text: str, width: int = 60) -> str:
    """``text`` as a plot label: at most ``width`` characters (an ellipsis marks a cut), and a
    dollar sign kept literal (matplotlib would read ``$...$`` as mathematics)."""
    if len(text) > width:
        text = text[: width - 1].rstrip() + "\u2026"
    return text.replace("$", r"\$")


@contextmanager
def fonts_for(texts: Iterable[str]) -> Iterator[str | None]:
    """Plots drawn (and saved) inside use a fallback font for what the default font lacks.

    Yields the fallback family, or ``None`` when none is needed or none is installed (the plots
    then keep the default font).
    """
    fallback = font_covering(missing_characters(texts))
    if fallback is None:
        yield None
        return
    with matplotlib.rc_context({"font.family": [DEFAULT_FAMILY, fallback]}):
        yield fallback


__all__ = ["DEFAULT_FAMILY", "font_covering", "fonts_for", "missing_characters", "plain_label"]
