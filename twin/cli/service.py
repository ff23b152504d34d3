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

    def pct(v: Any) -> str:
        return "–" if v is None or v != v else f"{v:.0%}"

    def mins(v: Any) -> str:
        return "–" if v is None or v != v else f"{v / 60:.1f}"

    def table(title: str, heads: list[str]) -> Table:
        t = Table(title=title, title_justify="left")
        for i, head in enumerate(heads):
            t.add_column(head, justify="left" if i == 0 else "right")
        return t

    rows = services.to_dict("records")
    who = table(
        f"Service hall of {info['scenario']} ({info['status']}): visitors",
        ["service", "came", "served", "within standard", "left unserved", "sent away", "still in"],
    )
    for r in rows:
        who.add_row(
            r["title"],
            f"{r['visitors']:,}",
            f"{r['served']:,}",
            pct(r["within_standard"]),
            f"{r['balked'] + r['reneged']:,}",
            f"{r['sent_away']:,}",
            f"{r['still_inside']:,}",
        )
    out.print(who)
    times = table(
        "Minutes (of those served)",
        ["service", "standard", "wait p50", "wait p90", "in hall p50", "in hall p90", "spread"],
    )
    for r in rows:
        times.add_row(
            r["title"],
            mins(r["standard_s"]),
            mins(r["wait_p50_s"]),
            mins(r["wait_p90_s"]),
            mins(r["in_hall_p50_s"]),
            mins(r["in_hall_p90_s"]),
            mins(r["wait_spread_s"]),
        )
    out.print(times)
    groups = table(
        "Counters", ["counter group", "counters", "steps served", "utilisation", "longest queue"]
    )
    for r in counters.to_dict("records"):
        groups.add_row(
            r["counter"],
            str(r["counters"]),
            f"{r['steps']:,}",
            pct(r["utilisation"]),
            str(r["longest_queue"]),
        )
    out.print(groups)
