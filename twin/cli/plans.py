"""Commands that weigh plans: ``twin evaluate`` and ``twin optimise``."""

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
InventoryFile = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        help="A readiness inventory (YAML): what the command has. Each plan's needs are "
        "checked against it (asta siap).",
    ),
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
    inventory: InventoryFile = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="The first replication's seed (default: the scenario's). Fresh seeds check "
            "a result found on others, such as twin optimise's choice.",
        ),
    ] = None,
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
        inventory=inventory,
        seed=seed,
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
    if info.get("readiness"):
        print_readiness(info["readiness"])
    for failure in info["failed"]:
        err.print(
            f"[yellow]failed twice:[/] {failure['plan']}, replication {failure['replication']} "
            f"(seed {failure['seed']}): {failure['reason']}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"Ensemble: {result.path}\nReport: {result.path / 'report.html'}", soft_wrap=True)


@app.command()
def optimise(
    scenario: Annotated[
        Path,
        typer.Argument(help="A scenario file (YAML) with a response section, or a service hall."),
    ],
    answer_share: Annotated[
        str | None,
        typer.Option(
            "--answer-share",
            help="Share of calls to answer within the scenario's answer target. Default: "
            "the scenario's (90%).",
        ),
    ] = None,
    on_scene_share: Annotated[
        str | None,
        typer.Option(
            "--on-scene-share",
            help="Share of incidents to reach within the on-scene target. Default: the "
            "scenario's (90%).",
        ),
    ] = None,
    costs: Annotated[
        Path | None,
        typer.Option(
            "--costs", help="A cost table (YAML: unit_hour, call_taker_hour, post_day, km)."
        ),
    ] = None,
    max_units: Annotated[
        int,
        typer.Option("--max-units", help="Search each unit group up to this many above today's."),
    ] = 6,
    posts: Annotated[
        int, typer.Option("--posts", help="Try up to this many new posts, sited by MCLP.")
    ] = 0,
    post_unit: Annotated[
        str, typer.Option("--post-unit", help="The unit at a new post: police_car or motorbike.")
    ] = "police_car",
    candidates: Annotated[
        int, typer.Option("--candidates", help="Plans to simulate in a round.")
    ] = 5,
    rounds: Annotated[
        int,
        typer.Option(
            "--rounds",
            help="Rounds of simulation: later ones run unclear plans again with twice the "
            "replications, and try richer plans where one missed.",
        ),
    ] = 3,
    replications: Annotated[
        int, typer.Option("--replications", "-n", help="Replications of each plan simulated.")
    ] = 10,
    max_replications: Annotated[
        int,
        typer.Option("--max-replications", help="The most replications a plan run again may get."),
    ] = 40,
    workers: Workers = None,
    scheduler: Scheduler = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder. Default: runs/SCENARIO-NAME-optimise."),
    ] = None,
    inventory: InventoryFile = None,
    hall: Annotated[
        bool,
        typer.Option(
            "--hall",
            help="Staff the scenario's service hall (the default for a scenario with a hall "
            "and no response section).",
        ),
    ] = False,
    standard_share: Annotated[
        str | None,
        typer.Option(
            "--standard-share",
            help="The hall: share of visitors to serve within their service's standard. "
            "Default: the scenario's service.target (90%).",
        ),
    ] = None,
    max_people: Annotated[
        int, typer.Option("--max-people", help="The hall: the most people per counter group.")
    ] = 30,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Find the cheapest plan that meets the targets with 95 % confidence: call-takers per
    pool, units per group, new posts. Queueing theory (Erlang A, the hypercube, MCLP)
    screens every combination; the few worth it run as an ensemble, and the simulation's
    intervals decide. For a service hall (--hall): the fewest counter staff that keep the
    published standard, screened by Erlang C / Allen-Cunneen hour by hour."""
    from twin.plans.optimise import optimise as run
    from twin.scenario import load_scenario

    sc = load_scenario(scenario)
    if hall or (sc.response is None and sc.service is not None):
        from twin.plans.staffing import optimise_staff

        staffed = optimise_staff(
            scenario,
            share=parse_share(standard_share, "--standard-share") if standard_share else None,
            candidates=candidates,
            rounds=rounds,
            replications=replications,
            max_replications=max_replications,
            max_people=max_people,
            workers=workers,
            scheduler=scheduler,
            out=out_dir,
            progress=not quiet,
        )
        print_staffing(staffed)
        return

    result = run(
        scenario,
        answer_share=parse_share(answer_share, "--answer-share") if answer_share else None,
        on_scene_share=parse_share(on_scene_share, "--on-scene-share") if on_scene_share else None,
        costs=load_costs(costs) if costs else None,
        max_units=max_units,
        posts=posts,
        post_unit=post_unit,
        candidates=candidates,
        rounds=rounds,
        replications=replications,
        max_replications=max_replications,
        workers=workers,
        scheduler=scheduler,
        out=out_dir,
        inventory=inventory,
        progress=not quiet,
    )
    print_optimisation(result)


def print_staffing(result: Any) -> None:
    """A hall's staffing search as the terminal shows it: the goal, every staffing
    simulated with the standard kept and its verdict, the one chosen, and the files."""
    from rich.table import Table

    info = result.info
    runs = sorted({x["replications"] for x in result.candidates if x.get("replications")})
    each = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]} to {runs[-1]}"
    out.print(
        f"Goal: {info['said']}, with 95 % confidence.\n"
        f"{len(result.candidates) - 1} staffings simulated beside the hall as it is, {each} "
        f"replications each, in {info['wall_s']:.0f} s.",
        highlight=False,
    )
    groups = list(info["today"])
    grid = Table(title="Staffings simulated, fewest people first", title_justify="left")
    grid.add_column("plan")
    grid.add_column("runs", justify="right")
    grid.add_column("people", justify="right")
    for g in groups:
        grid.add_column(g, justify="right")
    grid.add_column("standard kept %", justify="right")
    chosen = (result.chosen or {}).get("plan")
    marks = {"meets": "✔", "misses": "✖", "unclear": "?", "unknown": "–"}
    for x in result.candidates:
        mean, half = x.get("kept"), x.get("kept_half")
        kept = "–" if mean is None else f"{mean * 100:.1f} ± {(half or 0) * 100:.1f}"
        grid.add_row(
            ("★ " if x["plan"] == chosen else "") + x["plan"],
            str(x.get("replications") or ""),
            str(x["people"]),
            *(str(x["staff"].get(g, 0)) for g in groups),
            f"{kept} {marks[x['verdict']]}",
        )
    out.print(grid)
    out.print(
        "Mean ± 95 % interval (points). ✔ keeps the standard: the whole interval is at or "
        "above the goal; ✖ misses it; ? cannot tell yet. ★ chosen.",
        highlight=False,
    )
    for c in info.get("confirm") or []:
        kept = f"{c['kept'] * 100:.1f} ± {(c['kept_half'] or 0) * 100:.1f} %"
        held = "still keeps" if c["verdict"] == "meets" else "does NOT clear the goal"
        out.print(
            f"On {c['replications']} fresh seeds (from {c['first_seed']}), {c['plan']} {held}: "
            f"the standard kept for {kept}.",
            highlight=False,
            soft_wrap=True,
        )
    if result.chosen:
        c = result.chosen
        today = sum(info["today"].values())
        base = next((x for x in result.candidates if x["plan"] == "baseline"), {})
        costs = (
            f" Rp {c['cost']:,.0f} over the run (today Rp {base['cost']:,.0f})."
            if c.get("cost") is not None and base.get("cost") is not None
            else ""
        )
        out.print(
            f"Chosen: {c['plan']}, {c['people']} people ({c['people'] - today:+d} on today's "
            f"{today}): {c['description'].split(': ', 1)[-1]}.{costs}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        out.print(
            "No staffing simulated keeps the standard with 95 % confidence"
            + (" on fresh seeds too" if info.get("confirm") else "")
            + ": add --rounds or --replications, raise --max-people, or change the shifts' "
            "hours.",
            highlight=False,
        )
    fewer = info.get("fewer")
    if fewer and fewer["possible"]:
        left = fewer["possible"] - fewer["simulated"]
        out.print(
            f"Of the {fewer['possible']} staffings with one person fewer at one group, "
            f"{fewer['simulated']} were simulated and {fewer['kept']} of them kept the standard"
            + (f"; {left} not simulated (add --rounds)." if left else "."),
            highlight=False,
            soft_wrap=True,
        )
    for note in info["theory"]["notes"]:
        out.print(f"Note: {note}.", highlight=False, soft_wrap=True)
    out.print(
        f"Folder: {result.path}\nReport: {result.path / 'report.html'}"
        + (
            f"\nPlan file: {result.path / 'chosen.yaml'}"
            if (result.path / "chosen.yaml").exists()
            else ""
        ),
        soft_wrap=True,
    )


def load_costs(path: Path) -> Any:
    """A cost table file, or a ScenarioError naming the file and each field."""
    from pydantic import ValidationError

    from twin._inputs import load_yaml
    from twin.scenario import ScenarioError
    from twin.scenario._base import field_problems
    from twin.scenario.plan import Costs

    if not path.is_file():
        raise InputError(f"{path}: cost table not found")
    doc = load_yaml(path, what="cost table")
    try:
        return Costs.model_validate(doc if doc is not None else {})
    except ValidationError as exc:
        raise ScenarioError(
            str(path), [p for e in exc.errors() for p in field_problems(e)]
        ) from exc


def print_optimisation(result: Any) -> None:
    """The search as the terminal shows it: the targets, every plan simulated with its
    shares and verdict, the plan chosen, the one that just misses, and the files."""
    from rich.table import Table

    info = result.info
    runs = sorted({x["replications"] for x in result.candidates if x.get("replications")})
    each = f"{runs[0]}" if len(runs) == 1 else f"{runs[0]} to {runs[-1]}"
    out.print(
        f"Targets: {info['said']}, each with 95 % confidence.\n"
        f"The theory priced {info['space']['options']:,} plans; "
        f"{len(result.candidates) - 1} simulated beside the baseline, {each} replications "
        f"each, in {info['wall_s']:.0f} s.",
        highlight=False,
    )
    grid = Table(title="Plans simulated, cheapest first", title_justify="left")
    for col in ("plan", "runs", "cost (Rp)", "answered %", "on scene %"):
        grid.add_column(col, justify="left" if col == "plan" else "right")
    chosen = (result.chosen or {}).get("plan")
    marks = {"meets": "✔", "misses": "✖", "unclear": "?", "unknown": "–"}
    for x in result.candidates:
        cells = []
        for key in ("answered", "on_scene"):
            mean, half = x.get(key), x.get(f"{key}_half")
            text = "–" if mean is None else f"{mean * 100:.1f} ± {(half or 0) * 100:.1f}"
            cells.append(f"{text} {marks[x[f'{key}_verdict']]}")
        grid.add_row(
            ("★ " if x["plan"] == chosen else "") + x["plan"],
            str(x.get("replications") or ""),
            f"{x['cost']:,.0f}",
            *cells,
        )
    out.print(grid)
    out.print(
        "Mean ± 95 % interval (points). ✔ meets the target: the whole interval is at or "
        "above it; ✖ misses it; ? cannot tell yet: the interval holds it. ★ chosen.",
        highlight=False,
    )
    if result.chosen:
        c = result.chosen
        out.print(
            f"Chosen: {c['plan']} ({c['description']}), Rp {c['cost']:,.0f} over the run.",
            highlight=False,
        )
    else:
        unclear = any(
            "unclear" in (x["answered_verdict"], x["on_scene_verdict"]) for x in result.candidates
        )
        out.print(
            "No plan simulated meets both targets with 95 % confidence: "
            + (
                "some may, but their intervals still hold a target. Give more rounds or "
                "replications (--rounds, --max-replications), or a longer scenario."
                if unclear
                else "widen the search (--max-units, --posts)."
            ),
            highlight=False,
        )
    if result.just_misses:
        j = result.just_misses
        if result.chosen:
            less = result.chosen["cost"] - j["cost"]
            said = (
                f"Cheapest that just misses: {j['plan']} ({j['description']}), Rp {less:,.0f} less."
            )
        else:
            said = f"Closest to the targets: {j['plan']} ({j['description']})."
        out.print(said, highlight=False)
    if info.get("readiness"):
        print_readiness(info["readiness"])
    if (result.path / "chosen.yaml").is_file():
        out.print(f"Plan file: {result.path / 'chosen.yaml'}", soft_wrap=True)
    out.print(f"Report: {result.path / 'report.html'}", soft_wrap=True)


def print_readiness(results: dict[str, Any]) -> None:
    """Readiness in a few lines: per plan, ready or its gaps, and what the twin does not
    measure."""
    from twin.plans.readiness import gaps

    first = next(iter(results.values()))
    out.print(f"Readiness against {first['inventory']} (asta siap):", highlight=False)
    for name, result in results.items():
        found = gaps(result)
        said = "no gap in what the twin measures" if not found else "; ".join(found)
        out.print(f"  {name}: {said}", highlight=False, soft_wrap=True)
    outside = [k for k in first["kinds"] if not k["measured"]]
    out.print(
        "  Outside the twin: " + "; ".join(f"{k['label']}: {k['said']}" for k in outside),
        highlight=False,
        soft_wrap=True,
    )
