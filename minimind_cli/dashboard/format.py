"""Turning the trainer's numbers into short labels. Formatting only: no derived metrics here."""

from __future__ import annotations

import signal

from minimind.metrics import format_duration

NONE = "—"


def count(value: float | None, unit: str = "") -> str:
    """1234567 -> '1.23M' (SI suffixes, three significant digits)."""
    if value is None:
        return NONE
    value = float(value)
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}{unit}"
    return f"{value:.4g}{unit}" if value != int(value) else f"{int(value)}{unit}"


def duration(seconds: float | None) -> str:
    """Seconds -> 'H:MM:SS' (or 'Dd H:MM:SS' past a day): ``minimind.metrics.format_duration``."""
    if seconds is None:
        return NONE
    return format_duration(seconds)


def middle(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters, keeping both ends. A path keeps its
    last part whole when it fits (``out/ru…/step_00000300``): that is where the step number is."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    last = text.rsplit("/", 1)[-1]
    if "/" in text and len(last) + 5 <= width:
        return text[:width - len(last) - 2] + "…/" + last
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return NONE
    return f"{float(value):.{digits}g}"


def fixed(value: float | None, digits: int = 3) -> str:
    if value is None:
        return NONE
    return f"{float(value):.{digits}f}"


def percent(fraction: float | None, digits: int = 1) -> str:
    if fraction is None:
        return NONE
    return f"{100 * float(fraction):.{digits}f}%"


def mib(value: float | None) -> str:
    if value is None:
        return NONE
    value = float(value)
    return f"{value / 1024:.2f} GiB" if value >= 1024 else f"{value:.0f} MiB"


def mib_short(value: float | None) -> str:
    """MiB in at most five characters: '700M', '1.50G', '79.6G'."""
    if value is None:
        return NONE
    value = float(value)
    if value < 1024:
        return f"{value:.0f}M"
    gib = value / 1024
    return f"{gib:.2f}G" if gib < 10 else f"{gib:.1f}G" if gib < 100 else f"{gib:.0f}G"


def exit_status(returncode: int | None) -> str:
    """A process exit status in words: 'exit code 1', 'killed by SIGKILL (exit code 137)'."""
    if returncode is None:
        return "exit code unknown"
    if returncode < 0:
        return f"killed by {signal_name(-returncode)} (exit code {128 - returncode})"
    if returncode > 128 and returncode - 128 < 65:
        name = signal_name(returncode - 128)
        if returncode == 130:
            return "interrupted (exit code 130)"
        return f"exit code {returncode} ({name}?)"
    return f"exit code {returncode}"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
