"""The ``twin`` command line: the app, its options shared by several commands, and the
entry point. The commands live one family a module beside this one.

Every command speaks the planner's language. A problem with the user's input or files is
printed as one line, ``error: <file or option>: <problem>``, with exit status 2 and no
traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from twin._errors import InputError, TwinError

app = typer.Typer(
    name="twin",
    help="smart-policing-twin: a city digital twin for police and emergency planning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring's lines flow into one paragraph, as written
)
out = Console()
err = Console(stderr=True)


def _no_type_for_flags(self: Any, ctx: Any) -> str | None:
    """The help's type column, left empty for a flag: ``--baseline``, not ``--baseline
    <bool>`` (this typer release writes ``<bool>`` beside every flag, which takes none)."""
    return None if self.is_flag else _type_of_option(self, ctx)


_type_of_option = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _no_type_for_flags  # type: ignore[method-assign]

# The login and TLS options of every command that talks to an MQTT broker (feed, live,
# ingest); a command passes ``tls=tls_ca or tls`` on.
MqttUser = Annotated[str | None, typer.Option("--user")]
MqttPassword = Annotated[str | None, typer.Option("--password", envvar="TWIN_MQTT_PASSWORD")]
MqttTls = Annotated[
    bool, typer.Option("--tls", help="TLS, the broker checked with the system's CAs.")
]
MqttTlsCa = Annotated[
    Path | None, typer.Option("--tls-ca", help="TLS, the broker checked with this CA certificate.")
]
SensorKeys = Annotated[
    Path | None,
    typer.Option(
        "--sensor-keys",
        help="Signing sensors' HMAC keys (sensor-keys.yaml from twin sensors broker-config): "
        "their messages must be signed.",
    ),
]
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def kpi_grid(table: Any, names: list[str], title: str, *, diff: dict[str, str]) -> None:
    """Print a :func:`twin.kpi.compare` table: a column per run in ``names``, a column per
    difference (``diff``: run -> its column's heading), and the unit, each difference
    marked with its verdict (▲ better, ▼ worse, ≈ no detectable difference, † cut short;
    none for one run each), with ± intervals for ensembles. It fits
    the terminal without cutting a word: the KPI names wrap between words, and where the
    runs' names are too long for the width they are lettered, with a key above."""
    from twin.kpi import CUT_SHORT_NOTE, VERDICT_SIGNS, difference_note, format_interval

    rows, cut = [], False
    for row in table.to_dict("records"):
        unit = row["unit"]
        cells = [row["label"], *(format_interval(row[n], row.get(f"± {n}"), unit) for n in names)]
        for n in diff:
            verdict = row.get(f"verdict {n}")
            cut = cut or verdict == "cut_short"
            sign = VERDICT_SIGNS.get(verdict or "", "")
            shown = format_interval(row.get(f"Δ {n}"), row.get(f"± Δ {n}"), unit, signed=True)
            cells.append(f"{shown} {sign}".rstrip())
        rows.append([*cells, row["unit"]])
    heads = [*names, *diff.values()]
    columns = [[r[i + 1] for r in rows] for i in range(len(heads))]
    unit_w = max([4, *(len(r[-1]) for r in rows)])
    room = out.width - (18 + unit_w + 7)  # the KPI names wrap between words down to 18

    def width(head: str, cells: list[str]) -> int:
        return max(len(head), *(len(c) for c in cells)) + 3

    if sum(width(h, c) for h, c in zip(heads, columns, strict=True)) > room:
        lettered = [*names, *(n for n in diff if n not in names)]
        letters = {n: chr(ord("A") + i) for i, n in enumerate(lettered)}
        for n, letter in letters.items():
            out.print(f"{letter} = {n}", highlight=False, soft_wrap=True)
        heads = [*(letters[n] for n in names), *(f"Δ {letters[n]}" for n in diff)]
    # as many tables as it takes to fit the width, each with the KPIs and their units
    groups: list[list[int]] = [[]]
    used = 0
    for i, (head, cells) in enumerate(zip(heads, columns, strict=True)):
        if groups[-1] and used + width(head, cells) > room:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += width(head, cells)
    for g, group in enumerate(groups):
        grid = Table(title=title if g == 0 else f"{title} (continued)", title_justify="left")
        grid.add_column("KPI", ratio=1, min_width=12)
        for i in group:
            grid.add_column(
                heads[i], justify="right", no_wrap=True, min_width=width(heads[i], columns[i]) - 3
            )
        grid.add_column("unit", no_wrap=True, min_width=unit_w)
        for r in rows:
            grid.add_row(r[0], *(r[i + 1] for i in group), r[-1])
        out.print(grid)
    if diff:
        out.print(difference_note(table), highlight=False)
    if cut:
        out.print(CUT_SHORT_NOTE, highlight=False)


def print_comparison(table: Any, runs: list[Path], path: Path) -> None:
    """The KPI table of several runs, differences against the first, and warnings."""
    from twin.kpi import compared_names

    names = compared_names(table)
    kpi_grid(table, names, f"KPIs compared with {names[0]}", diff={n: f"Δ {n}" for n in names[1:]})
    from twin.runs import Run
    from twin.runs.compare import run_warnings

    for warning in run_warnings(names, [Run.load(r).info for r in runs]):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    said = f"Comparison report: {path}"
    out.print(said if len(said) <= out.width else f"Comparison report:\n{path}", soft_wrap=True)


def within_seconds(text: str) -> float:
    """Seconds from a --within option ("10min", "90s" ...), or an InputError naming it."""
    from twin.scenario import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"--within: {exc}") from exc


def city_or_default(bundle: Path | None) -> Any:
    """The given city bundle, or the default city (built on first use)."""
    from twin.city import City, builtin_city

    if bundle is not None:
        return City.load(bundle)
    return builtin_city("default", progress=False)


def fmt(value: Any, unit: str = "", *, signed: bool = False) -> str:
    from twin.kpi import format_value

    return format_value(value, unit, signed=signed)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``twin`` console script."""
    signal.signal(signal.SIGTERM, _on_sigterm)  # so an interrupted build cleans up after itself
    args = sys.argv[1:]
    if "--debug" in args:  # accepted anywhere on the line, not only before the command
        _state["debug"] = True
        args = ["--debug", *(a for a in args if a != "--debug")]
    try:
        app(args=args, prog_name="twin")
    except TwinError as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was left behind")
        sys.exit(130)


def console_log(name: str, *, stamp: bool = True) -> None:
    """A logger's INFO lines on the console (stderr), with the wall-clock time (``stamp``):
    who signed in, what was refused; an exercise's lines carry its own clock instead."""
    import logging

    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler()
        shown = "%(asctime)s %(message)s" if stamp else "%(message)s"
        handler.setFormatter(logging.Formatter(shown, "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
