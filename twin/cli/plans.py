"""Commands that weigh plans: ``twin evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from twin._errors import InputError
from twin.cli._app import app, err, kpi_grid, out


def parse_share(text: str, option: str) -> float:
    """A share written ``5%`` or ``0.05``, or an InputError naming the option."""
    raw = text.strip()
    try:
        value = float(raw.removesuffix("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        raise InputError(f"{option}: a share such as 5% or 0.05, not {text!r}") from None
    if not 0 < value < 1:
        raise InputError(f"{option}: a share between 0 and 100 %, not {text!r}")
    return value


Replications = Annotated[
    int | None,
    typer.Option(
        "--replications", "-n", help="Replications of each plan (seeds SEED, SEED+1 ...)."
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Worker processes of the local Dask cluster. Default: the cores."
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Use this Dask cluster instead: tcp://HOST:8786."),
]


@app.command()
def evaluate(
    scenario: Annotated[Path, typer.Argument(help="A scenario file (YAML): the baseline.")],
    plan: Annotated[
        list[Path] | None,
        typer.Option("--plan", help="A plan file (YAML), laid over the scenario. Repeat for more."),
    ] = None,
    replications: Replications = None,
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Add replications until every headline KPI's 95 % interval is within this "
            "share of its mean: 5% (or 0.05).",
        ),
    ] = None,
    max_replications: Annotated[
        int, typer.Option("--max-replications", help="The most replications --precision may run.")
    ] = 50,
    workers: Workers = None,
    scheduler: Scheduler = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Ensemble folder. Default: runs/SCENARIO-NAME-evaluation."),
    ] = None,
    keep_timelines: Annotated[
        bool, typer.Option("--keep-timelines", help="Keep every replication's run folder.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the scenario as it is and with each plan, replication by replication on Dask,
    and say which differences are real. Replication i of every plan uses the same seed,
    so differences are paired; each KPI gets its mean and 95 % interval."""
    run_evaluation(
        scenario,
        list(plan or []),
        replications=replications,
        precision=parse_share(precision, "--precision") if precision else None,
        max_replications=max_replications,
        workers=workers,
        scheduler=scheduler,
        out=out_dir,
        keep_timelines=keep_timelines,
        progress=not quiet,
    )


def run_evaluation(scenario: Path, plans: list[Path] | None, **options: Any) -> None:
    """Evaluate (:func:`twin.plans.ensemble.evaluate`), print it, and exit 130 if Ctrl-C
    cut it short: ``twin evaluate`` and ``twin run --replications`` alike."""
    from twin.plans.ensemble import evaluate as run

    result = run(scenario, plans, **options)
    print_evaluation(result)
    if result.interrupted:
        raise typer.Exit(130)


def print_evaluation(result: Any) -> None:
    """An evaluation as the terminal shows it: how many replications and why it stopped,
    the KPI table with intervals and verdicts, what failed, and where the files are."""
    from twin.kpi import compared_names

    info, table = result.info, result.table
    names = compared_names(table)
    counts = sorted(set(info["replications"].values()))
    each = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]} to {counts[-1]}"
    cluster = info["cluster"]
    where = (
        f"{cluster['workers']} local workers"
        if cluster["scheduler"] == "local cluster"
        else f"{cluster['workers']} workers of {cluster['scheduler']}"
    )
    out.print(
        f"{each} replications of each plan on {where}, in {info['wall_s']:.0f} s.\n"
        f"Stopped: {info['stopped']}.",
        highlight=False,
    )
    if len(names) == 1:
        kpi_grid(table, names, f"KPIs of {info['scenario']}", diff={})
    else:  # the baseline, and what each plan changes: each plan's own figures are in the report
        from twin.plans.ensemble import HEADLINE

        changed = [
            row["kpi"] in (*HEADLINE, "cost_total")
            or any(v not in (None, "same") for v in row[[f"verdict {n}" for n in names[1:]]])
            for _, row in table.iterrows()
        ]
        shown = table[changed]
        kpi_grid(
            shown,
            names[:1],
            f"What each plan changes in {info['scenario']}",
            diff={n: f"Δ {n}" for n in names[1:]},
        )
        left = len(table) - len(shown)
        if left:
            out.print(
                f"{left} KPIs that no plan moves are left out; the report has every KPI of "
                "every plan.",
                highlight=False,
            )
    if len(names) == 1:
        out.print("Means of the replications ± 95 % interval (Student's t).", highlight=False)
    for failure in info["failed"]:
        err.print(
            f"[yellow]failed twice:[/] {failure['plan']}, replication {failure['replication']} "
            f"(seed {failure['seed']}): {failure['reason']}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"Ensemble: {result.path}\nReport: {result.path / 'report.html'}", soft_wrap=True)
