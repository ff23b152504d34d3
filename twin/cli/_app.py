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
)
out = Console()
err = Console(stderr=True)

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
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


def print_comparison(table: Any, runs: list[Path], path: Path) -> None:
    """The KPI table of several runs, differences against the first, and warnings."""
    names = [
        c
        for c in table.columns
        if c not in ("kpi", "label", "unit", "better") and not c.startswith("Δ ")
    ]
    grid = Table(title=f"KPIs compared with {names[0]}", title_justify="left")
    grid.add_column("KPI")
    for name in names:
        grid.add_column(name, justify="right")
    for name in names[1:]:
        grid.add_column(f"Δ {name}", justify="right")
    grid.add_column("unit")
    for row in table.to_dict("records"):
        cells = [
            row["label"],
            *(fmt(row[n], row["unit"]) for n in names),
            *(fmt(row[f"Δ {n}"], row["unit"], signed=True) for n in names[1:]),
        ]
        grid.add_row(*cells, row["unit"])
    out.print(grid)
    from twin.runs import Run
    from twin.runs.compare import run_warnings

    for warning in run_warnings(names, [Run.load(r).info for r in runs]):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    out.print(f"Comparison report: {path}")


def within_seconds(text: str) -> float:
    """Seconds from a --within option ("10min", "90s" ...), or an InputError naming it."""
    from twin.scenario import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"--within: {exc}") from exc


def city_or_default(bundle: Path | None) -> Any:
    """The given city bundle, or the default city (built on first use)."""
    from twin.city import City, build_city

    if bundle is not None:
        return City.load(bundle)
    return build_city(out=Path("cities/helsinki"), progress=False).city


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
