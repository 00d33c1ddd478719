"""The dashboard's colours, named once. Panels draw Rich text and plotext draws its own figures,
so the colours live here in Python; the apps also expose them to their ``.tcss`` files as CSS
variables (``$mm-green`` ...: ``css_variables``)."""

from __future__ import annotations

GREEN = "#3fb950"
AMBER = "#d29922"
ORANGE = "#f0883e"
RED = "#f85149"
RED_DARK = "#da3633"
BLUE = "#58a6ff"
CYAN = "#39c5cf"
PINK = "#db61a2"
PURPLE = "#a371f7"
GREY = "#a0a0a0"
MUTED = "#8b949e"
HEAT_COLD = "#1f2d5c"  # an expert's share of 0 ...
HEAT_EVEN = "#2ea043"  # ... its fair share ...
HEAT_HOT = RED  # ... twice that or more

# One colour per series or run, the same in a plot and in its legend: run i of a comparison
# always gets SERIES[i] (the order of the command line).
SERIES = (CYAN, ORANGE, PINK, GREEN, AMBER, BLUE, RED, PURPLE)

# The loss plot's series and the lr plot's
LOSS, SMOOTHED, VAL, PHASE, PLANNED = CYAN, ORANGE, PINK, MUTED, BLUE

# The status badge in the header and the comparison's table: (label, Rich style)
STATUS_STYLE = {
    "waiting": ("WAITING", f"black on {GREY}"),
    "running": ("RUNNING", f"black on {GREEN}"),
    "paused": ("PAUSED", f"black on {AMBER}"),
    "stopping": ("STOPPING", f"black on {AMBER}"),
    "finished": ("FINISHED", f"black on {BLUE}"),
    "stopped": ("STOPPED", f"black on {BLUE}"),
    "interrupted": ("INTERRUPTED", f"black on {AMBER}"),
    "failed": ("FAILED", f"white on {RED_DARK}"),
}

# The events log, by kind of line
LOG_STYLES = {"checkpoint": "green", "eval": "cyan", "warning": "yellow", "alert": f"bold {AMBER}",
              "error": "bold red", "control": "magenta", "info": ""}

NOTICE_STYLE = f"bold black on {AMBER}"
OOM_NOTICE_STYLE = f"bold black on {ORANGE}"
SPARKLINE = BLUE
PROMPT = f"italic {MUTED}"


def css_variables() -> dict[str, str]:
    """The palette as Textual CSS variables (``App.get_theme_variable_defaults``)."""
    names = {"green": GREEN, "amber": AMBER, "orange": ORANGE, "red": RED, "red-dark": RED_DARK,
             "blue": BLUE, "cyan": CYAN, "pink": PINK, "purple": PURPLE, "grey": GREY, "muted": MUTED}
    return {f"mm-{name}": value for name, value in names.items()}
