"""``twin audit verify``: whether a run's or a live twin's record is as it was written
(:mod:`twin.audit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from twin.cli._app import app, out

audit_app = typer.Typer(
    help="The audit chain over timelines, acknowledgements and orders.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify(
    record: Annotated[
        Path, typer.Argument(help="A run folder (runs/NAME) or a live twin's DuckDB file.")
    ],
    head: Annotated[
        str | None,
        typer.Option(
            "--head",
            help="A chain head copied from a report or an after-action review: the record "
            "must pass through it.",
        ),
    ] = None,
) -> None:
    """Check that every record still carries the hash of the one before it, up to the head
    kept with the record. Says which record was altered, inserted or deleted, and exits 1,
    if any was."""
    from twin.audit import verify_live, verify_run

    if record.is_dir():
        verdict, what = verify_run(record, head=head), f"run {record}"
    else:
        verdict, source = verify_live(record, head=head)
        what = f"{record} ({source})"
    if verdict.intact:
        out.print(f"{what}: {verdict}", soft_wrap=True, markup=False)
        if head:
            out.print(f"It passes through the head given ({head.strip()[:16]}…).", markup=False)
        return
    out.print(f"{what}: {verdict}", soft_wrap=True, markup=False, style="bold red")
    raise typer.Exit(1)
