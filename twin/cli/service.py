"""``twin service SCENARIO``: the one-gate service hall of a scenario (:mod:`twin.service`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from twin._errors import InputError
from twin.cli._app import app, err, out


@app.command()
def service(
    scenario: Annotated[Path, typer.Argument(help="A scenario file with a service section.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder. Default: runs/SCENARIO-NAME.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario's service hall (alone, or with the rest of the scenario on the same
    clock) and print each service's waiting, time in the hall against its published
    standard and who left unserved, and each counter group's utilisation and longest
    queue; "spread" is the standard deviation of waits between visitors of the same
    service and hour (queue-jumping widens it). One run is one draw: compare plans with
    twin evaluate."""
    from twin import kpi
    from twin.runs import RunIncomplete, run_scenario
    from twin.scenario import load_scenario

    if load_scenario(scenario).service is None:
        raise InputError(f"{scenario}: no service section (see twin schema, 'service')")
    try:
        result = run_scenario(scenario, out=out_dir, seed=seed, progress=not quiet)
    except RunIncomplete as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    timeline = result.path / "timeline.parquet"
    print_service(kpi.service_table(timeline), kpi.counter_table(timeline), result.info)
    out.print(f"Run folder: {result.path}", markup=False, soft_wrap=True)


def print_service(services: Any, counters: Any, info: dict[str, Any]) -> None:
    """The hall's tables as a planner reads them: people, shares, minutes."""
    from twin.report.hall import counter_rows, minute_rows, visitor_rows

    def table(title: str, rows: list[dict[str, str]]) -> Table:
        t = Table(title=title, title_justify="left")
        for i, head in enumerate(rows[0] if rows else []):
            t.add_column(head, justify="left" if i == 0 else "right")
        for row in rows:
            t.add_row(*row.values())
        return t

    out.print(
        table(
            f"Service hall of {info['scenario']} ({info['status']}): visitors",
            visitor_rows(services),
        )
    )
    out.print(table("Minutes (of those served)", minute_rows(services)))
    out.print(table("Counters", counter_rows(counters)))
