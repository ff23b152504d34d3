"""``twin exercise check|run|aar|whatif``: command-post exercises (:mod:`twin.exercise`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin._errors import InputError
from twin.cli._app import app, console_log, out
from twin.cli.plans import Scheduler, Workers

exercise_app = typer.Typer(
    help="Command-post exercises: an MSEL of injects played on the twin, teams giving "
    "orders, and the after-action review.",
    no_args_is_help=True,
)
app.add_typer(exercise_app, name="exercise")

ExerciseFile = Annotated[
    Path, typer.Argument(help="The exercise file (YAML: the scenario and the MSEL, or its sheet).")
]


@exercise_app.command("check")
def check(
    exercise: ExerciseFile,
    teams: Annotated[
        Path | None, typer.Option("--teams", help="The teams file, checked with the MSEL.")
    ] = None,
) -> None:
    """Validate an exercise without running it: its MSEL rows, the places of its injects
    on the city, its scenario and its teams. Every problem is named by row and column."""
    from twin.exercise.run import check_exercise

    checked = check_exercise(exercise, teams)
    for line in checked.summary():
        out.print(line, markup=False, soft_wrap=True)
    out.print("The exercise is ready to run.", markup=False)


@exercise_app.command("run")
def run(
    exercise: ExerciseFile,
    teams: Annotated[
        Path, typer.Option("--teams", help="The teams file: who commands which units.")
    ],
    speed: Annotated[
        float,
        typer.Option(
            "--speed", help="Simulated seconds per wall-clock second (the trainer can change it)."
        ),
    ] = 1.0,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="The exercise's live file (default exercises/NAME/live.duckdb)."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="The run folder (default runs/NAME).")
    ] = None,
    paused: Annotated[
        bool,
        typer.Option(
            "--paused",
            help="Start with the clock stopped: the trainer resumes it once the teams are in.",
        ),
    ] = False,
) -> None:
    """Play an exercise in wall-clock time. Follow it and give orders on the dashboards
    (twin dash --live DB: the trainer's page, each team's page, the observers'); each
    inject, order and refusal is printed here with the exercise's clock."""
    from twin._sumo import sumo_console_to
    from twin.exercise.run import check_exercise, run_exercise
    from twin.live.run import sumo_folder

    if not 0 < speed <= 1000:
        raise InputError(f"--speed: between 0 and 1000 times real time, got {speed:g}")
    checked = check_exercise(exercise, teams)
    ex, scenario = checked.exercise, checked.scenario
    db = db or Path("exercises") / ex.name / "live.duckdb"
    minutes = scenario.duration / 60
    out.print(
        f"Exercise {ex.name}: {scenario.name} from {scenario.start:%H:%M}, {minutes:g} min "
        f"at {speed:g}× real time ({minutes / speed:.1f} min); Ctrl-C stops it.",
        markup=False,
        soft_wrap=True,
    )
    out.print(
        f"The teams follow it and give orders on: twin dash --live {db}",
        markup=False,
        soft_wrap=True,
    )
    sumo_console_to(sumo_folder(db) / "console.log")  # SUMO's warnings off the terminal
    console_log("twin.exercise", stamp=False)  # after: on the terminal's stderr
    result = run_exercise(exercise, teams, speed=speed, db=db, out=out_dir, paused=paused)
    out.print(
        f"Exercise {result.status}: {result.released} injects sent, {result.answered} answered, "
        f"{result.missed} missed; {result.events:,} events in {result.run}.",
        markup=False,
        soft_wrap=True,
    )
    out.print(f"After-action review: twin exercise aar {result.run}", markup=False)


@exercise_app.command("aar")
def aar(
    run_dir: Annotated[Path, typer.Argument(help="The exercise's run folder (runs/NAME).")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Where to write the review (default RUN/aar.html).")
    ] = None,
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also print it as PDF beside it, for the course file.")
    ] = False,
) -> None:
    """Write the after-action review of an exercise: each inject and its answer, each
    team's orders, the incidents, the KPIs against the doctrine's targets, the sectors'
    status over time, and what the expected action would have changed at each key decision
    (once twin exercise whatif has played them)."""
    from twin.exercise.aar import review, write_aar

    rev = review(run_dir)
    path = write_aar(run_dir, out_file, rev)
    counts = rev.injects["verdict"].value_counts()
    out.print(
        f"{len(rev.injects)} injects: {int(counts.get('on time', 0))} answered on time, "
        f"{int(counts.get('late', 0))} late, {int(counts.get('missed', 0))} missed.",
        markup=False,
    )
    for r in rev.injects.itertuples():
        team = f"all → {r.answered_by}" if r.team == "all" and r.verdict != "missed" else r.team
        if r.verdict in ("on time", "late"):
            out.print(
                f"  {r.inject} ({team}): {r.expected.replace('_', ' ')} after "
                f"{r.delay_s / 60:.1f} min of {r.due_s / 60:g} ({r.verdict})",
                markup=False,
            )
        elif r.verdict == "missed":
            out.print(
                f"  {r.inject} ({r.team}): no {r.expected.replace('_', ' ')} within "
                f"{r.due_s / 60:g} min (missed)",
                markup=False,
            )
    from twin.exercise.whatif import load_whatif, summary_lines

    saved = load_whatif(run_dir)
    if saved is None:
        out.print(
            f"No what-if yet: twin exercise whatif {run_dir} puts a figure on each missed or "
            "late decision.",
            markup=False,
            soft_wrap=True,
        )
    else:
        for line in summary_lines(saved):
            out.print(line, markup=False, soft_wrap=True)
    out.print(f"Review: {path}", markup=False)
    if pdf:
        from twin.report import print_pdf

        out.print(f"PDF: {print_pdf(path, path.with_suffix('.pdf'))}", markup=False)


@exercise_app.command("whatif")
def whatif(
    run_dir: Annotated[Path, typer.Argument(help="The exercise's run folder (runs/NAME).")],
    replications: Annotated[
        int,
        typer.Option(
            "--replications", "-n", help="Draws (seeds) of each pair, the exercise's own first."
        ),
    ] = 10,
    horizon: Annotated[
        str, typer.Option("--horizon", help="How long after the last decision to play (30min).")
    ] = "30min",
    workers: Workers = None,
    scheduler: Scheduler = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Put a figure on each key decision: play the exercise again as the teams played it
    and with the expected action instead of a missed or late one, over several draws, and
    give what changed with its 95 % interval. The review (twin exercise aar) shows it."""
    from twin.exercise.whatif import load_whatif, summary_lines, what_if
    from twin.scenario import parse_duration

    try:
        horizon_s = parse_duration(horizon)
    except ValueError as exc:
        raise InputError(f"--horizon: {exc}") from exc
    result = what_if(
        run_dir,
        replications=replications,
        horizon_s=horizon_s,
        workers=workers,
        scheduler=scheduler,
        progress=not quiet,
    )
    for line in summary_lines(load_whatif(run_dir) or {}):
        out.print(line, markup=False, soft_wrap=True)
    for f in result.failures:
        out.print(
            f"  run {f['plan']} #{f['replication']} (seed {f['seed']}) failed: {f['reason']}",
            markup=False,
            soft_wrap=True,
        )
    out.print(
        f"What-if: {result.folder}; the review shows it: twin exercise aar {run_dir}",
        markup=False,
        soft_wrap=True,
    )
