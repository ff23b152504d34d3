"""``twin dash``: the dashboards on runs or a running live twin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from twin._errors import InputError
from twin.cli._app import (
    app,
    out,
)


@app.command()
def dash(
    runs: Annotated[
        list[Path] | None,
        typer.Argument(help="Run folders (runs/NAME) or ensemble folders (twin evaluate) to show."),
    ] = None,
    live: Annotated[
        list[Path] | None,
        typer.Option("--live", help="A running live twin's DuckDB file (repeatable)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8050,
    host: Annotated[str, typer.Option("--host", help="Address to serve on.")] = "127.0.0.1",
    rules: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="YAML thresholds for aman / waspada / rawan (see twin.kpi.StatusRules)."
        ),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="id (Bahasa Indonesia) or en.")] = "id",
    tiles: Annotated[
        str | None,
        typer.Option(
            "--tiles", help="Online: a tile server's URL with {z}/{x}/{y}, under the map."
        ),
    ] = None,
    tiles_attribution: Annotated[
        str,
        typer.Option("--tiles-attribution", help="The credit the tile server's licence asks for."),
    ] = "Tiles © OpenStreetMap contributors",
) -> None:
    """Open the dashboards (K3i command centre) on runs or a running live twin, in a
    browser at http://HOST:PORT."""
    from twin import kpi
    from twin.dashboards.app import create_app
    from twin.report import Tiles

    try:
        background = Tiles(tiles, tiles_attribution) if tiles else None
    except ValueError as exc:
        raise InputError(f"--tiles: {exc}") from exc
    from twin.plans.ensemble_folder import is_ensemble, load_ensemble

    runs, live = runs or [], live or []
    if not runs and not live:
        raise InputError("give run folders (twin dash runs/NAME) or --live DB")
    ensembles = [r for r in runs if is_ensemble(r)]
    runs = [r for r in runs if not is_ensemble(r)]
    for ensemble in ensembles:
        load_ensemble(ensemble)  # its problems said here, not in the browser
    for run in runs:
        if not (run / "timeline.parquet").is_file():
            raise InputError(
                f"{run}: not a run folder (no timeline.parquet) nor an ensemble folder; "
                "run `twin run` or `twin evaluate` first"
            )
    status_rules = None
    if rules is not None:
        status_rules = kpi.StatusRules.from_file(rules)
    if lang not in ("id", "en"):
        raise InputError(f"--lang: id or en, not {lang!r}")
    app = create_app(
        runs, live=live, rules=status_rules, lang=lang, tiles=background, ensembles=ensembles
    )
    serve(app.server, host, port)


def serve(server: Any, host: str, port: int) -> None:
    """Serve the dashboards' WSGI app, a thread per request, and say where, once: the
    console shows what the officer needs (the address, then errors), not each request or
    the development server's banner."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per HTTP request
    try:
        httpd = make_server(host, port, server, threaded=True)
    except OSError as exc:
        raise InputError(f"--port {port}: cannot serve on {host}:{port} ({exc.strerror})") from exc
    out.print(f"Dashboards on http://{host}:{port}/ (Ctrl-C stops them)")
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()
