"""The report page: one self-contained HTML file (Plotly's JavaScript inside, no network, no server).

Figures are plain Plotly JSON drawn by ``Plotly.newPlot``; the Python package ``plotly`` (the
``minimind[report]`` extra) is needed only for its bundled ``plotly.min.js``. No torch here, so the
dashboard can write a report of what it shows.

The page records script errors (``window.onerror``, ``console.error``) in the ``data-report-errors``
attribute of ``<html>`` and a red banner, and sets ``data-report-plots`` to the number of figures
drawn once they all are: a headless browser's DOM dump says whether the page worked.
"""

from __future__ import annotations

import html
import json
import math
import time
from typing import Any

from minimind.errors import EXIT_USAGE, ReportError
from minimind.metrics import format_duration, visible_whitespace
from minimind.report.data import X_AXES, Marker, RunData, config_rows, downsample

PALETTE = ("#1f9bb4", "#e8730c", "#c2457f", "#2f9e44", "#b08800", "#3d7bd9", "#d63b32", "#8a5cd1")
LOSS, SMOOTHED, VAL = "#8fc9d6", "#e8730c", "#c2457f"
MARKER_STYLE = {"phase": ("#6e7781", "dot", "curriculum phase"), "oom": ("#d63b32", "dash", "out-of-memory retry"),
                "replan": ("#8a5cd1", "dash", "lr re-planned"), "resume": ("#2f9e44", "dot", "resumed")}
X_TITLES = {"step": "step", "tokens": "tokens", "time": "wall time (s)"}
PLOT_HEIGHT = 360


def plotly_js() -> str:
    """Plotly's JavaScript bundle, from the optional ``plotly`` package."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ReportError("`minimind report` needs plotly: pip install 'minimind[report]'",
                          exit_code=EXIT_USAGE) from None
    return get_plotlyjs()


def build_page(runs: list[RunData], *, now: float | None = None, js: str | None = None) -> str:
    """The whole HTML page for one run or a comparison of several."""
    now = time.time() if now is None else now
    js = plotly_js() if js is None else js
    figures = single_figures(runs[0]) if len(runs) == 1 else compare_figures(runs)
    title = runs[0].name if len(runs) == 1 else " vs ".join(r.name for r in runs)
    body = [f"<h1>{_e(title)}</h1>", _notes(runs, now)]
    body.append(_header(runs[0]) if len(runs) == 1 else _runs_table(runs))
    body.append(_x_switch())
    body.append('<div class="plots">')
    for fig in figures:
        wide = " wide" if fig["wide"] else ""
        body.append(f'<section class="plot{wide}"><div id="{fig["id"]}" class="fig"></div></section>')
    body.append("</div>")
    body.append(_samples(runs))
    body.append(_config(runs))
    body.append(_checkpoints(runs))
    body.append(_log(runs))
    body.append(f'<footer>written by minimind report at {_e(_clock(now))}</footer>')
    data = json.dumps([{k: fig[k] for k in ("id", "data", "layout", "xs")} for fig in figures],
                      separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return PAGE.format(title=_e(f"minimind report: {title}"), style=STYLE, guard=GUARD, plotly=js,
                       body="\n".join(b for b in body if b), data=data, draw=DRAW)


# ----------------------------------------------------------------------------- figures
def _fig(fig_id: str, title: str, *, y_title: str = "", y2_title: str | None = None,
         log_toggle: bool = False, x_switch: bool = True) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}}, "height": PLOT_HEIGHT,
        "margin": {"l": 60, "r": 60 if y2_title else 20, "t": 50, "b": 50}, "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0},
        "xaxis": {"title": {"text": "step"}, "gridcolor": "#eee", "zeroline": False},
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#eee", "zeroline": False},
        "plot_bgcolor": "white", "paper_bgcolor": "white",
    }
    if y2_title:
        layout["yaxis2"] = {"title": {"text": y2_title}, "overlaying": "y", "side": "right", "showgrid": False}
    if log_toggle:
        layout["updatemenus"] = [{"type": "buttons", "direction": "right", "x": 0.5, "xanchor": "center",
                                  "y": 1.02, "yanchor": "bottom", "font": {"size": 11}, "showactive": True, "pad": {"r": 0, "t": 0},
                                  "buttons": [{"label": "linear", "method": "relayout", "args": ["yaxis.type", "linear"]},
                                              {"label": "log", "method": "relayout", "args": ["yaxis.type", "log"]}]}]
    return {"id": fig_id, "data": [], "layout": layout, "xs": {} if x_switch else None, "wide": False}


def _line(fig: dict[str, Any], run: RunData, steps: list[int], ys: list[float], *, name: str,
          color: str, width: float = 1.6, dash: str | None = None, mode: str = "lines", yaxis: str = "y",
          group: str | None = None, visible: Any = True, opacity: float = 1.0, digits: int = 5) -> None:
    """Add a trace, downsampled for drawing, with its x on each axis for the page's x switch."""
    keep = downsample(steps, ys)
    steps = [steps[i] for i in keep]
    ys = [_round(ys[i], digits) for i in keep]
    _trace(fig, run, steps, ys, name=name, color=color, width=width, dash=dash, mode=mode, yaxis=yaxis,
           group=group, visible=visible, opacity=opacity)


def _trace(fig: dict[str, Any], run: RunData, steps: list[int], ys: list[Any], *, name: str, color: str,
           width: float = 1.6, dash: str | None = None, mode: str = "lines", yaxis: str = "y",
           group: str | None = None, visible: Any = True, opacity: float = 1.0,
           hover: list[str] | None = None) -> None:
    trace: dict[str, Any] = {"type": "scatter", "mode": mode, "name": name, "x": [None if s is None else float(s) for s in steps],
                             "y": ys, "yaxis": yaxis, "visible": visible, "opacity": opacity,
                             "line": {"color": color, "width": width}}
    if dash:
        trace["line"]["dash"] = dash
    if "markers" in mode:
        trace["marker"] = {"color": color, "size": 7}
    if group:
        trace["legendgroup"] = group
    if hover is not None:
        trace["text"], trace["hovertemplate"] = hover, "%{text}<extra></extra>"
    fig["data"].append(trace)
    if fig["xs"] is not None:
        for axis in X_AXES:
            xs = run.x_of(axis, [int(s) if s is not None else 0 for s in steps])
            fig["xs"].setdefault(axis, []).append(
                [None if s is None or x is None else _round(x, 6) for s, x in zip(steps, xs, strict=True)])


def _markers(fig: dict[str, Any], run: RunData, markers: list[Marker], lo: float, hi: float,
             kinds: tuple[str, ...]) -> None:
    """Vertical lines (one trace per kind, so the legend toggles them) from ``lo`` to ``hi``."""
    for kind in kinds:
        chosen = [m for m in markers if m.kind == kind]
        if not chosen:
            continue
        color, dash, label = MARKER_STYLE[kind]
        steps: list[Any] = []
        ys: list[Any] = []
        hover: list[str] = []
        for m in chosen:
            steps += [m.step, m.step, None]
            ys += [lo, hi, None]
            hover += [m.text, m.text, ""]
        _trace(fig, run, steps, ys, name=label, color=color, width=1.2, dash=dash, hover=hover)


def single_figures(run: RunData) -> list[dict[str, Any]]:
    figs = []
    loss = _fig("loss", "loss", y_title="loss (nats/token)", log_toggle=True)
    loss["wide"] = True
    steps, raw = run.series("loss")
    if steps:
        _line(loss, run, steps, raw, name="loss", color=LOSS, width=1)
    s, v = run.series("loss_ema")
    if s:
        _line(loss, run, s, v, name="smoothed", color=SMOOTHED, width=2.2)
    s, v = run.val_series()
    if s:
        _line(loss, run, s, v, name="validation", color=VAL, mode="lines+markers", width=1.5)
    values = raw + v
    if values:
        _markers(loss, run, run.markers, min(values), max(values), ("phase", "oom", "resume"))
    figs.append(loss)

    lr = _fig("lr", "learning rate", y_title="lr")
    for i, (label, points) in enumerate(run.planned_lr):
        if points:
            _line(lr, run, [p[0] for p in points], [p[1] for p in points], name=label,
                  color="#9aa4ad" if i == 0 else MARKER_STYLE["replan"][0], dash="dash", digits=6)
    s, v = run.series("lr")
    if s:
        _line(lr, run, s, v, name="actual lr", color=PALETTE[0], width=2, digits=6)
    lrs = v + [p[1] for _, points in run.planned_lr for p in points]
    if lrs:
        _markers(lr, run, run.markers, min(lrs), max(lrs), ("replan", "resume"))
    figs.append(lr)

    speed = _fig("speed", "throughput", y_title="tokens/s", y2_title="MFU (%)")
    s, v = run.series("tokens_per_s")
    if s:
        _line(speed, run, s, v, name="tokens/s", color=PALETTE[0])
    s, v = run.series("mfu")
    if s:
        _line(speed, run, s, [x * 100 for x in v], name="MFU %", color=PALETTE[1], yaxis="y2")
    figs.append(speed)

    grad = _fig("grad", "gradient norm", y_title="grad norm", log_toggle=True)
    s, v = run.series("grad_norm")
    if s:
        _line(grad, run, s, v, name="grad norm", color=PALETTE[3])
    figs.append(grad)

    figs.append(_memory_fig(run))
    if run.is_moe and run.moe_frames():
        figs += _moe_figures(run)
    return [f for f in figs if f["data"]]


def _memory_fig(run: RunData) -> dict[str, Any]:
    mem = _fig("memory", "memory", y_title="MiB")
    for i, (label, (s, v)) in enumerate(run.memory().items()):
        _line(mem, run, s, v, name=label, color=PALETTE[i % len(PALETTE)], digits=6)
    total, margin = run.memory_total()
    shapes, notes = [], []
    if total:
        shapes.append(_hline(total, "#d63b32", "solid"))
        notes.append(_hnote(total, f"device total {total:,.0f} MiB"))
        if margin:
            limit = total * (1 - float(margin))
            shapes.append(_hline(limit, "#b08800", "dash"))
            notes.append(_hnote(limit, f"limit ({float(margin):.0%} kept free)"))
    estimate = run.started.memory_estimate.total_mib if run.started and run.started.memory_estimate else None
    if estimate:
        shapes.append(_hline(float(estimate), "#6e7781", "dot"))
        notes.append(_hnote(float(estimate), "estimate before start"))
    mem["layout"]["shapes"], mem["layout"]["annotations"] = shapes, notes
    return mem


def _hline(y: float, color: str, dash: str) -> dict[str, Any]:
    return {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
            "line": {"color": color, "width": 1.2, "dash": dash}}


def _hnote(y: float, text: str) -> dict[str, Any]:
    return {"xref": "paper", "x": 1, "xanchor": "right", "y": y, "yanchor": "bottom", "text": text,
            "showarrow": False, "font": {"size": 11, "color": "#555"}}


def _moe_figures(run: RunData) -> list[dict[str, Any]]:
    frames = run.moe_frames()
    last_step, last = frames[-1]
    top = max((x for _, load in frames for row in load for x in row), default=1.0)
    heat = _fig("moe_load", f"MoE expert load (share of tokens), step {last_step}", x_switch=False)
    layers, experts = len(last), len(last[0]) if last else 0
    heat["data"].append({"type": "heatmap", "z": _round_matrix(last), "zmin": 0, "zmax": top,
                         "x": [f"expert {e}" for e in range(experts)], "y": [f"layer {i}" for i in range(layers)],
                         "colorscale": "Viridis", "colorbar": {"title": {"text": "share"}},
                         "hovertemplate": "%{y}, %{x}: %{z:.3f}<extra></extra>"})
    layout = heat["layout"]
    heat["wide"] = True
    layout.update(hovermode="closest", height=max(PLOT_HEIGHT, 140 + 28 * layers))
    layout["yaxis"] = {"autorange": "reversed"}
    layout["xaxis"] = {"side": "bottom"}
    layout["margin"]["b"] = 90
    layout["sliders"] = [{
        "active": len(frames) - 1, "currentvalue": {"prefix": "step "}, "pad": {"t": 40}, "font": {"size": 9},
        "steps": [{"label": str(step), "method": "update",
                   "args": [{"z": [_round_matrix(load)]},
                            {"title.text": f"MoE expert load (share of tokens), step {step}"}]}
                  for step, load in frames]}]
    figs = [heat]
    balance = _fig("moe_balance", "MoE balance", y_title="imbalance (max share / fair share)",
                   y2_title="aux loss")
    s, v = run.series("moe.imbalance")
    if s:
        _line(balance, run, s, v, name="imbalance", color=PALETTE[2])
    s, v = run.series("moe.aux_loss")
    if s:
        _line(balance, run, s, v, name="aux loss", color=PALETTE[5], yaxis="y2")
    figs.append(balance)
    bias = _fig("moe_bias", "router bias spread (max - min over experts)", y_title="bias")
    for i, (label, (s, v)) in enumerate(run.router_bias_spread().items()):
        _line(bias, run, s, v, name=label, color=PALETTE[i % len(PALETTE)], digits=6)
    figs.append(bias)
    return figs


def compare_figures(runs: list[RunData]) -> list[dict[str, Any]]:
    loss = _fig("loss", "loss (smoothed lines, validation dots; raw loss in the legend)",
                y_title="loss (nats/token)", log_toggle=True)
    loss["wide"] = True
    lr = _fig("lr", "learning rate", y_title="lr")
    speed = _fig("speed", "throughput", y_title="tokens/s")
    grad = _fig("grad", "gradient norm", y_title="grad norm", log_toggle=True)
    mem = _fig("memory", "memory", y_title="MiB")
    balance = _fig("moe_balance", "MoE imbalance (max share / fair share)", y_title="imbalance")
    for i, run in enumerate(runs):
        color, g = PALETTE[i % len(PALETTE)], f"run{i}"
        for fig, key, label, kwargs in (
                (loss, "loss", f"{run.name} raw", {"visible": "legendonly", "width": 1, "opacity": 0.6}),
                (loss, "loss_ema", run.name, {"width": 2.2}),
                (lr, "lr", run.name, {"digits": 6}), (speed, "tokens_per_s", run.name, {}),
                (grad, "grad_norm", run.name, {}), (balance, "moe.imbalance", run.name, {})):
            s, v = run.series(key)
            if s:
                _line(fig, run, s, v, name=label, color=color, group=g, **kwargs)
        s, v = run.val_series()
        if s:
            _line(loss, run, s, v, name=f"{run.name} validation", color=color, mode="markers", group=g)
        memory = run.memory()
        if memory:
            label, (s, v) = next(iter(memory.items()))
            _line(mem, run, s, v, name=f"{run.name} {label}", color=color, group=g, digits=6)
    return [f for f in (loss, lr, speed, grad, mem, balance) if f["data"]]


def _round(value: float | None, digits: int = 5) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return round(value, max(0, digits - 1 - int(math.floor(math.log10(abs(value))))))


def _round_matrix(rows: list[list[float]]) -> list[list[float | None]]:
    return [[_round(float(x), 4) for x in row] for row in rows]


# ------------------------------------------------------------------------------ HTML parts
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _clock(t: float | None) -> str:
    return "—" if t is None else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(t))


def _n(value: Any, digits: int | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"
    return str(value)


def _notes(runs: list[RunData], now: float) -> str:
    out = []
    for run in runs:
        if run.is_snapshot:
            out.append(f'<p class="note snapshot">{_e(run.name)} is still training: this page is a snapshot '
                       f'taken at {_e(_clock(run.read_at))} (step {_n(run.summary.get("step"))} of '
                       f'{_n(run.summary.get("total_steps"))}).</p>')
        if run.truncated_line:
            out.append(f'<p class="note">{_e(run.name)}: the last line of events.jsonl is incomplete '
                       '(written while the trainer stopped) and is left out.</p>')
        head = run.header()
        if head["error"]:
            tb = (f'<details><summary>traceback</summary><pre>{_e(head["traceback"])}</pre></details>'
                  if head["traceback"] else "")
            out.append(f'<div class="note failed">{_e(run.name)} failed: {_e(head["error"])}{tb}</div>')
        elif run.status == "failed":
            out.append(f'<p class="note failed">{_e(run.name)} failed: {_e(run.summary.get("message"))}</p>')
    out.append('<p class="note failed" id="report-errors" hidden></p>')
    return "\n".join(out)


def _header(run: RunData) -> str:
    h = run.header()
    params = _n(h["params_total"])
    if h["params_active"] not in (None, h["params_total"]):
        params += f" total, {_n(h['params_active'])} active"
    devices = h["device"] if not h["devices"] or len(set(h["devices"])) <= 1 else ", ".join(h["devices"])
    fields = [
        ("status", f'<span class="status {_e(h["status"])}">{_e(h["status"])}</span> {_e(h["message"] or "")}'),
        ("profile", _e(h["profile"] or "—")), ("parameters", _e(params)),
        ("device", _e(f"{devices or '—'}, {h['dtype'] or '—'}, world size {h['world_size'] or '—'}")),
        ("dataset", _e(f"{_n(h['dataset_documents'])} documents, {_n(h['dataset_tokens'])} tokens, "
                       f"fingerprint {h['dataset_fingerprint'] or '—'}")),
        ("progress", _e(f"step {_n(h['step'])} of {_n(h['total_steps'])}")),
        ("wall time", _e(format_duration(h["elapsed_s"]) if h["elapsed_s"] is not None else "—")),
        ("tokens", _e(_n(h["tokens_seen"]))),
        ("final loss", _e(_n(h["final_loss"], 4) + (f" (smoothed {_n(h['loss_ema'], 4)})"
                                                    if h["loss_ema"] is not None else ""))),
        ("val loss", _e(_n(h["val_loss"], 4) + (f" (perplexity {_n(h['perplexity'], 2)})"
                                                if h["perplexity"] is not None else ""))),
        ("bits per byte", _e(_n(h["bits_per_byte"], 4) if h["bits_per_byte"] is not None
                             else "— (minimind eval RUN measures it)")),
        ("started", _e(_clock(h["started"]))), ("last event", _e(_clock(h["updated"]))),
    ]
    if h["optimizer"]:
        fields.insert(3, ("optimizer", _e(h["optimizer"])))
    cells = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in fields)
    return f'<dl class="header">{cells}</dl>'


def _runs_table(runs: list[RunData]) -> str:
    head = ("run", "status", "profile", "params", "device", "step", "tokens", "wall time", "loss", "val loss")
    rows = []
    for i, run in enumerate(runs):
        h = run.header()
        cells = [f'<span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{_e(run.name)}',
                 f'<span class="status {_e(h["status"])}">{_e(h["status"])}</span>', _e(h["profile"] or "—"),
                 _e(_n(h["params_total"])), _e(f"{h['device'] or '—'} {h['dtype'] or ''}"),
                 _e(f"{_n(h['step'])}/{_n(h['total_steps'])}"), _e(_n(h["tokens_seen"])),
                 _e(format_duration(h["elapsed_s"]) if h["elapsed_s"] is not None else "—"),
                 _e(_n(h["final_loss"], 4)), _e(_n(h["val_loss"], 4))]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return _table(head, rows, "runs")


def _table(head: tuple[str, ...] | list[str], rows: list[str], cls: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _x_switch() -> str:
    buttons = "".join(f'<label><input type="radio" name="xaxis" value="{a}"{" checked" if a == "step" else ""}>'
                      f'{X_TITLES[a]}</label>' for a in X_AXES)
    return f'<div class="xswitch">x-axis of the plots: {buttons}</div>'


def _section(title: str, inner: str, *, open_: bool = True) -> str:
    return f'<details class="section"{" open" if open_ else ""}><summary><h2>{_e(title)}</h2></summary>{inner}</details>'


def _samples(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        by_prompt = run.samples_by_prompt()
        if not by_prompt:
            continue
        blocks = []
        for prompt, texts in by_prompt.items():
            rows = [f'<tr><td class="num">{step:,}</td><td><pre class="sample"><b>{_e(prompt)}</b>{_e(visible_whitespace(text))}'
                    f'</pre></td></tr>' for step, text in reversed(texts)]
            blocks.append(f"<h3>{_e(prompt)!s}</h3>" + _table(("step", "continuation (newest first)"), rows,
                                                               "samples"))
        title = "" if len(runs) == 1 else f"<h3 class='runname'>{_e(run.name)}</h3>"
        parts.append(title + "".join(blocks))
    return _section("samples", "".join(parts)) if parts else ""


def _config(runs: list[RunData]) -> str:
    keys, values = config_rows(runs)
    if len(runs) == 1:
        rows = [f'<tr><td class="key">{_e(k)}</td><td>{_e(_value(v))}</td></tr>' for k, v in zip(keys, values[0],
                                                                                                 strict=True)]
        return _section("resolved config", _table(("key", "value"), rows, "config"), open_=False)
    if not keys:
        return _section("config differences", "<p>The runs have the same resolved config (the run section aside).</p>")
    rows = [f'<tr><td class="key">{_e(k)}</td>' + "".join(f"<td>{_e(_value(v[j]))}</td>" for v in values) + "</tr>"
            for j, k in enumerate(keys)]
    head = ["setting"] + [r.name for r in runs]
    return _section("config differences", _table(head, rows, "config"))


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _checkpoints(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        if not run.checkpoints:
            continue
        rows = [f'<tr><td class="num">{c["step"]:,}</td><td>{_e(_clock(c["time"]))}</td>'
                f'<td>{_e(format_duration(c["age_s"]))} ago</td><td class="path">{_e(c["path"])}</td></tr>'
                for c in reversed(run.checkpoints)]
        title = "" if len(runs) == 1 else f"<h3 class='runname'>{_e(run.name)}</h3>"
        parts.append(title + _table(("step", "saved", "age", "path"), rows))
    if not parts:
        return _section("checkpoints", "<p>No complete checkpoint in the run directory.</p>", open_=False)
    return _section("checkpoints", "".join(parts), open_=False)


def _log(runs: list[RunData]) -> str:
    parts = []
    for run in runs:
        rows = [f'<tr class="{row.kind}"><td class="num">{_e(format_duration(row.offset_s)) if row.offset_s is not None else "—"}</td>'
                f'<td class="num">{_n(row.step)}</td><td>{_e(row.kind)}</td><td>{_e(row.text)}</td></tr>'
                for row in run.log]
        dropped = (f"<p>{run.log_dropped:,} earlier lines are left out.</p>" if run.log_dropped else "")
        warnings = sum(1 for r in run.log if r.kind in ("warning", "error"))
        title = "" if len(runs) == 1 else f"<h3 class='runname'>{_e(run.name)}</h3>"
        parts.append(f"{title}<p>{len(run.log):,} lines, {warnings} warnings or errors (highlighted).</p>{dropped}"
                     + _table(("time", "step", "kind", "event"), rows, "log"))
    return _section("events", "".join(parts), open_=len(runs) == 1)


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0 auto;
 max-width:1320px;padding:16px 24px}
h1{font-size:22px;margin:4px 0 10px} h2{font-size:17px;display:inline;margin:0} h3{font-size:14px;margin:14px 0 4px}
.header{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:3px 14px;margin:8px 0 12px;
 padding:10px 14px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px}
.header dt{color:#57606a} .header dd{margin:0}
.status{font-weight:600;padding:0 6px;border-radius:4px}
.status.finished{background:#dafbe1;color:#116329} .status.failed{background:#ffebe9;color:#a40e26}
.status.running{background:#ddf4ff;color:#0550ae} .status.stopped{background:#fff8c5;color:#7d4e00}
.note{padding:8px 12px;border-radius:6px;background:#fff8c5;border:1px solid #d4a72c;margin:6px 0}
.note.failed{background:#ffebe9;border-color:#ff8182} .note.snapshot{background:#ddf4ff;border-color:#54aeff}
.xswitch{position:sticky;top:0;z-index:5;background:#fff;padding:6px 0;border-bottom:1px solid #eee}
.xswitch label{margin-left:12px;cursor:pointer}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:10px;margin:10px 0}
.plot{border:1px solid #d0d7de;border-radius:6px;padding:4px;min-width:0} .plot.wide{grid-column:1/-1}
@media (max-width:900px){.plots{grid-template-columns:1fr}}
table{border-collapse:collapse;margin:6px 0;width:100%} th,td{border-bottom:1px solid #eaeef2;padding:3px 8px;
 text-align:left;vertical-align:top} th{background:#f6f8fa}
td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums} td.key{font-family:monospace}
td.path{font-family:monospace;word-break:break-all}
table.config td{font-family:monospace}
tr.warning td{background:#fff8c5} tr.error td{background:#ffebe9;font-weight:600}
pre{margin:0;white-space:pre-wrap;word-break:break-word} pre.sample{font-size:13px} pre.sample b{color:#0550ae}
.section{margin:14px 0} summary{cursor:pointer;padding:4px 0}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
footer{color:#57606a;margin:20px 0 8px;font-size:12px}
"""

GUARD = """
window.__reportErrors = [];
function __reportError(msg) {
  window.__reportErrors.push(String(msg));
  document.documentElement.setAttribute('data-report-errors', String(window.__reportErrors.length));
  var el = document.getElementById('report-errors');
  if (el) { el.hidden = false; el.textContent = 'script errors: ' + window.__reportErrors.join(' | '); }
}
window.onerror = function (msg) { __reportError(msg); };
window.addEventListener('unhandledrejection', function (e) { __reportError(e.reason); });
(function () { var orig = console.error; console.error = function () {
  __reportError(Array.prototype.join.call(arguments, ' ')); return orig.apply(console, arguments); }; })();
"""

DRAW = """
(function () {
  var config = {responsive: true, displaylogo: false, scrollZoom: false};
  var drawn = FIGURES.map(function (f) {
    return Plotly.newPlot(document.getElementById(f.id), f.data, f.layout, config);
  });
  Promise.all(drawn).then(function () {
    var n = document.querySelectorAll('.fig .main-svg').length ? FIGURES.length : 0;
    document.documentElement.setAttribute('data-report-plots', String(n));
  }, function (err) { __reportError(err); });
  var titles = {step: 'step', tokens: 'tokens', time: 'wall time (s)'};
  document.querySelectorAll('input[name=xaxis]').forEach(function (input) {
    input.addEventListener('change', function () {
      FIGURES.forEach(function (f) {
        if (!f.xs) return;
        var div = document.getElementById(f.id);
        Plotly.update(div, {x: f.xs[input.value]}, {'xaxis.title.text': titles[input.value],
                                                   'xaxis.autorange': true});
      });
    });
  });
})();
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
<script>{guard}</script>
<script>{plotly}</script>
</head>
<body>
{body}
<script>var FIGURES = {data};</script>
<script>{draw}</script>
</body>
</html>
"""
