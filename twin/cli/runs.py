"""Commands that run and read what-if scenarios: ``twin run``, ``compare``, ``predict`` and
``schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from twin._errors import InputError
from twin.cli._app import (
    app,
    err,
    kpi_grid,
    out,
    print_comparison,
)
from twin.cli.plans import (
    Replications,
    Scheduler,
    Workers,
    print_evaluation,
    run_evaluation,
)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="A scenario file (YAML).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Run folder. Default: runs/SCENARIO-NAME.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed.")
    ] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline", help="Also run without the road events and compare.")
    ] = False,
    simulator: Annotated[
        str | None, typer.Option("--simulator", help="libsumo (default) or traci.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    replications: Replications = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
) -> None:
    """Run a what-if scenario and print its KPIs; the run folder holds the report. A
    scenario with variants runs each of them and prints them side by side. With
    --replications, run it that many times on Dask (as twin evaluate does, with no plan)
    and print each KPI's mean and 95 % interval."""
    from twin.runs import RunIncomplete, run_scenario, run_variants
    from twin.scenario import load_scenario

    if simulator not in (None, "libsumo", "traci"):
        raise InputError(f"--simulator: 'libsumo' or 'traci', not {simulator!r}")
    if replications is not None or workers is not None or scheduler is not None:
        if baseline or simulator or seed is not None:
            raise InputError(
                "--baseline, --simulator and --seed apply to one run; with --replications the "
                "seeds are the scenario's seed, +1, +2 ..."
            )
        if replications is None:
            raise InputError("--workers and --scheduler go with --replications N")
        run_evaluation(
            scenario,
            None,
            replications=replications,
            workers=workers,
            scheduler=scheduler,
            out=out_dir,
            progress=not quiet,
        )
        return
    if load_scenario(scenario).variants:
        if baseline or simulator:
            raise InputError(
                "--baseline and --simulator apply to one run; give them in the variants instead"
            )
        try:
            results, table, report = run_variants(
                scenario, out=out_dir, seed=seed, progress=not quiet
            )
        except RunIncomplete as exc:
            _print_run(exc.result)
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from exc
        print_comparison(table, [r.path for r in results], report)
        return
    try:
        result = run_scenario(
            scenario,
            out=out_dir,
            seed=seed,
            baseline=baseline,
            simulator=simulator,
            progress=not quiet,
        )
    except RunIncomplete as exc:
        _print_run(exc.result)
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from exc
    _print_run(result)


def _print_run(result: Any) -> None:
    from twin import kpi

    summaries = {"run": result.kpis}
    if result.baseline is not None:
        summaries = {"baseline": result.baseline.kpis, "run": result.kpis}
    table = kpi.compare(summaries, reference="baseline" if result.baseline else "run")
    info = result.info
    kpi_grid(
        table,
        list(summaries),
        f"KPIs of {info['scenario']} ({info['status']})",
        diff={"run": "difference"} if result.baseline is not None else {},
    )
    if result.kpis.get("by_vehicle_type"):
        print_vehicle_types(result.kpis["by_vehicle_type"], info.get("vehicle_mix"))
    if result.kpis.get("accidents_by_vehicle"):
        counts = result.kpis["accidents_by_vehicle"]
        out.print(
            "Traffic accidents by vehicle type involved: "
            + ", ".join(f"{k} {v:,}" for k, v in counts.items())
            + f" ({sum(counts.values()):,} in all; rates by type from the scenario)."
        )
    report = result.path / "report.html"
    out.print(
        f"Simulated {info['simulated_s'] / 60:.0f} min in {info['wall_s']} s "
        f"({info['realtime_factor']}× real time).\n"
        + (
            f"Report: {report}"
            if report.is_file()
            else f"Run folder: {result.path} (no report: the scenario's outputs.report is off)"
        )
    )


def print_vehicle_types(by_type: dict[str, Any], mix: dict[str, Any] | None) -> None:
    """Trips per vehicle type, with where the scenario's mix comes from."""
    from rich.table import Table

    total = sum(row["trips"] for row in by_type.values()) or 1
    table = Table(title="Trips by vehicle type (means per trip)", title_justify="left")
    table.add_column("type", no_wrap=True)
    for name in ("share", "trips", "trip, min", "delay, s", "speed, km/h", "teleports"):
        table.add_column(name, justify="right", no_wrap=True)
    for vtype, row in by_type.items():
        table.add_row(
            vtype,
            f"{row['trips'] / total:.1%}",
            f"{row['trips']:,}",
            f"{row['mean_trip_min']:.2f}",
            f"{row['mean_delay_s']:.0f}",
            f"{row['mean_speed_kmh']:.1f}" if row["mean_speed_kmh"] is not None else "-",
            f"{row['teleports']:,}",
        )
    out.print(table)
    if mix:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in mix["shares"].items())
        lanes = (
            f"; motorcycles filter between cars (sublanes of {mix['sublane_m']:g} m)"
            if mix.get("sublane_m")
            else ""
        )
        out.print(f"Vehicle mix {shares}: {mix['source']}{lanes}.")


@app.command()
def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Two or more run folders, or one ensemble folder.")
    ],
    out_file: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Report file. Default: compare-OTHER-RUNS.html in the first run's folder."
        ),
    ] = None,
) -> None:
    """Compare runs: a KPI table with differences against the first, and an HTML report.
    Given an ensemble folder (twin evaluate), print its plans with their intervals."""
    from twin.plans.ensemble_folder import is_ensemble, load_ensemble
    from twin.runs.compare import compare_runs

    if any(is_ensemble(r) for r in runs):
        if len(runs) != 1 or out_file is not None:
            raise InputError(
                "give one ensemble folder alone: its plans are compared with its baseline, "
                "and its report is already in it"
            )
        print_evaluation(load_ensemble(runs[0]))
        return
    table, path = compare_runs(runs, out=out_file)
    print_comparison(table, runs, path)


@app.command()
def predict(
    run_folder: Annotated[Path, typer.Argument(help="A run folder with crime on its timeline.")],
    shift: Annotated[str, typer.Option("--shift", help="Forecast period: 8h, 12h, 1d ...")] = "8h",
    flag: Annotated[float, typer.Option("--flag", help="Share of the area flagged, in %.")] = 5.0,
    cell: Annotated[float, typer.Option("--cell", help="Grid cell side, metres.")] = 100.0,
    after: Annotated[
        str, typer.Option("--after", help="Learn from this much history before the first forecast.")
    ] = "1d",
    bandwidth: Annotated[float, typer.Option("--bandwidth", help="Kernel width, metres.")] = 50.0,
) -> None:
    """Score hotspot forecasts (naive, kde, sepp) on a run's crimes: hit rate and PAI."""
    from twin.city import City
    from twin.predict import city_grid, evaluate, events_from_timeline
    from twin.runs import Run
    from twin.scenario import parse_duration

    info = Run.load(run_folder).info
    try:
        shift_s, after_s = parse_duration(shift), parse_duration(after)
    except ValueError as exc:
        raise InputError(f"--shift/--after: {exc}") from exc
    if not 0 < flag <= 100:
        raise InputError(f"--flag must be a percentage in (0, 100], got {flag:g}")
    city = City.load(Path(info["city"]["path"]))
    grid, frame = city_grid(city, cell=cell)
    events, what = events_from_timeline(run_folder / "timeline.parquet", frame)
    end = float(info["simulated_s"])
    table = evaluate(
        events, grid, start=after_s, end=end, shift=shift_s, share=flag / 100, bandwidth=bandwidth
    )
    out.print(
        f"{len(events.t):,} {what} in {run_folder}; forecasts every {shift} after the first {after}, "
        f"flagging {flag:g}% of {grid.n:,} cells of {cell:g} m."
    )
    grid_t = Table(title="Hotspot forecasts", title_justify="left")
    for col in ("method", "shifts", "events", "hit rate", "PAI"):
        grid_t.add_column(col, justify="left" if col == "method" else "right")
    for row in table.itertuples():
        grid_t.add_row(
            row.method, f"{row.shifts}", f"{row.events:,}", f"{row.hit_rate:.1%}", f"{row.pai:.2f}"
        )
    out.print(grid_t)
    out.print("PAI: hit rate over the share of the area flagged (1 = no better than chance).")


@app.command()
def schema(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of printing.")
    ] = None,
    sensors: Annotated[
        bool, typer.Option("--sensors", help="The sensor messages' schemas instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of scenario files (or of sensor messages), for editors."""
    from twin.scenario import json_schema
    from twin.sensors.messages import json_schemas

    what = "sensor messages" if sensors else "scenario"
    text = json.dumps(json_schemas() if sensors else json_schema(), indent=2, ensure_ascii=False)
    if out_file is None:
        print(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        out.print(f"Wrote the {what} JSON Schema to {out_file}")
