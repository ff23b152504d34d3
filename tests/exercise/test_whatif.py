"""The what-if at each key decision: an exercise played in wall-clock time, with orders,
a pause and the trainer's hand, is played again from its order journal exactly; a late and
a missed decision are priced both ways with intervals; a journal that no longer matches
the exercise is caught; and the journal's reader refuses what it cannot read."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.exercise.test_director import CROWD, INJURED, exercise
from twin._errors import InputError

INJECTS = [
    {
        "id": "crowd",
        "at": "+5min",
        "title": "Massa ricuh",
        "team": "polres",
        "does": "crowd",
        **CROWD,
        "expect": "dispatch",
        "within": "5min",
    },
    {
        "id": "injured",
        "at": "+10min",
        "title": "Pengunjuk rasa terluka",
        "team": "dinkes",
        "does": "incident",
        "incident_type": "medical",
        "priority": 1,
        **INJURED,
        "expect": "dispatch",
        "within": "5min",
    },
    {
        "id": "second-crowd",
        "at": "+15min",
        "title": "Massa kedua",
        "team": "polres",
        "does": "crowd",
        "lat": 60.1697,
        "lon": 24.9400,
        "expect": "dispatch",
        "within": "5min",
    },
    {"id": "calls", "at": "+12min", "title": "Telepon 110", "does": "feed", "feed": "calls.jsonl"},
    {
        "id": "warning",
        "at": "+16min",
        "title": "Peringatan",
        "team": "polres",
        "does": "message",
        "expect": "public_message",
        "within": "2min",
    },
]


def _played(tmp_path: Path, helsinki_city) -> Path:
    """The exercise above, played at 300× with a scripted command post: the trainer
    pauses and resumes; polres answers the crowd in time, dinkes the injured late
    (8 min after it came, 3 past its time), nobody the second crowd or the warning; a feed
    brings two recorded 110 calls through the sensors' door."""
    from twin.exercise.run import run_exercise
    from twin.live.run import read_published, send_order

    calls = [  # a recorded segment: a caller's 110 call, and another 3 minutes on
        {
            "type": "EmergencyCall",
            "id": f"f{i}",
            "number": "110",
            "category": "crime",
            "dateReceived": f"2026-06-14T21:{30 + 3 * i}:00+03:00",
            "caller": f"+35840123456{i}",
            "location": {"type": "Point", "coordinates": [24.9400, 60.1697]},
        }
        for i in range(2)
    ]
    (tmp_path / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls))
    path = exercise(tmp_path, helsinki_city.path, INJECTS)
    path.parent.joinpath("scenario.yaml").write_text(
        path.parent.joinpath("scenario.yaml").read_text().replace("1h30min", "45min")
    )
    db = tmp_path / "live.duckdb"
    script = [
        (120, {"kind": "exercise_control", "action": "pause", "user": "tono"}),
        (120, {"kind": "exercise_control", "action": "resume", "user": "tono"}),
        (
            400,
            {
                "kind": "exercise_order",
                "order": "dispatch",
                "team": "polres",
                "unit": "P-1",
                "incident": "crowd",
                "user": "budi",
            },
        ),
        (
            1080,
            {
                "kind": "exercise_order",
                "order": "dispatch",
                "team": "dinkes",
                "unit": "A-1",
                "incident": "injured",
                "user": "wati",
                "order_id": "wati-1",
            },
        ),
    ]
    done = threading.Event()

    def command_post() -> None:
        for at, order in script:
            while not done.is_set():
                try:
                    now = read_published(db)[0].get("now") or 0.0
                except (InputError, OSError, ValueError):
                    now = 0.0
                if now >= at:
                    break
                time.sleep(0.02)
            if order["kind"] == "exercise_control" and order["action"] == "resume":
                time.sleep(0.5)  # the clock stands still meanwhile
            send_order(db, order)

    thread = threading.Thread(target=command_post)
    thread.start()
    try:
        result = run_exercise(
            path, path.parent / "teams.yaml", speed=300, db=db, out=tmp_path / "run", user="tono"
        )
    finally:
        done.set()
        thread.join()
    assert result.status == "complete"
    return result.run


@pytest.fixture(scope="module")
def played(tmp_path_factory, helsinki_city) -> Path:
    return _played(tmp_path_factory.mktemp("whatif"), helsinki_city)


def test_the_decisions_and_what_each_expected_run_plays(played):
    import duckdb

    from twin.exercise.whatif import decisions, expected_journal, with_ids
    from twin.live.run import read_orders

    # the feed's two calls came in at their own spacing, and the run keeps them to replay
    calls = duckdb.sql(
        f"SELECT t, reason FROM '{played / 'timeline.parquet'}' WHERE kind = 'sensor_message'"
    ).fetchall()
    assert calls == [(720.0, ""), (900.0, "")]
    kept = json.loads((played / "run.json").read_text())["exercise"]["feeds"]["calls"]
    assert [offset for offset, _text in kept] == [0.0, 180.0]
    found = {d.inject: d for d in decisions(played)}
    assert set(found) == {"injured", "second-crowd", "warning"}
    late, missed, message = found["injured"], found["second-crowd"], found["warning"]
    assert (late.verdict, late.kind, late.order_id) == ("late", "move", "wati-1")
    assert late.delay_s is not None and 5 * 60 < late.delay_s < 10 * 60
    assert (missed.verdict, missed.kind) == ("missed", "book")
    assert message.why_not == "the twin does not model what a public message changes"
    journal = with_ids(read_orders(played / "orders.jsonl"))
    kinds = [(e["order"].get("action") or e["order"]["order"], e["paused"]) for e in journal]
    assert kinds == [("pause", False), ("resume", True), ("dispatch", False), ("dispatch", False)]
    # the team orders sent without an id get the one the director gave them
    assert [e["order"]["order_id"] for e in journal if e["order"]["kind"] == "exercise_order"] == [
        "order-1",
        "wati-1",
    ]
    moved = expected_journal(journal, late)
    answer = next(e for e in moved if e["order"].get("order_id") == "wati-1")
    assert answer["t"] == late.released_s + 0.5 and len(moved) == len(journal)
    assert expected_journal(journal, missed) == journal


@pytest.fixture(scope="module")
def priced(played):
    """The what-if of the played exercise: 3 draws, 10 minutes past the last decision."""
    from twin.exercise.whatif import what_if

    return what_if(played, replications=3, horizon_s=600.0, workers=2, progress=False)


@pytest.mark.slow
def test_the_what_if_replays_the_exercise_and_prices_its_decisions(played, priced):
    from twin.exercise.whatif import load_whatif, summary_lines

    result = priced
    assert result.check.startswith("identical, event by event")
    saved = load_whatif(played)
    assert saved is not None and saved["seeds"] == [42, 43, 44]
    figures = {
        d["inject"]: {r["kpi"]: r for r in d["figures"]} for d in saved["decisions"] if d["figures"]
    }
    assert set(figures) == {"injured", "second-crowd"}
    # the ambulance sent when the injured came, not 8 min later: on scene that much sooner
    late = next(d for d in saved["decisions"] if d["inject"] == "injured")
    wait = figures["injured"]["inject_wait_s"]
    assert wait["delta"] == pytest.approx(-late["delay_s"] / 60, abs=0.2)
    assert wait["verdict"] == "better" and wait["half"] < 1.0
    # the second crowd: no unit came as played (to the run's end), the CAD's units did
    missed = figures["second-crowd"]["inject_wait_s"]
    assert missed["as played"] == pytest.approx((result.until_s - (15 * 60)) / 60)
    assert missed["expected"] < missed["as played"] and missed["verdict"] == "better"
    said = "\n".join(summary_lines(saved))
    assert said.startswith("3 key decisions; each played both ways in 3 draws")
    assert (
        "warning (polres), missed: no what-if: the twin does not model what a public message"
        in said
    )
    # the review shows it
    from twin.exercise.aar import write_aar

    page = write_aar(played).read_text()
    assert "What the expected action would have changed" in page
    assert "expected run: the CAD&#x27;s closest units sent at 07:15:00" in page


@pytest.mark.slow
def test_a_journal_that_no_longer_matches_the_exercise_is_caught(played, priced):
    from twin.exercise.whatif import what_if

    journal = played / "orders.jsonl"
    kept = journal.read_text()
    journal.write_text("\n".join(x for x in kept.splitlines() if '"budi"' not in x) + "\n")
    try:
        with pytest.raises(InputError, match="the replay parts from the exercise") as caught:
            what_if(played, replications=2, horizon_s=600.0, workers=1, progress=False)
        assert "order_given" in str(caught.value)
    finally:
        journal.write_text(kept)
    assert (played / "whatif" / "whatif.json").is_file()  # the good one stays


@pytest.mark.slow
def test_the_replay_page_plays_the_exercise_back_with_its_what_if(played, priced, page):
    from tests.dashboards.conftest import assert_clean, serve, sign_in
    from twin.dashboards.app import create_app

    address, server = serve(create_app([played]))
    try:
        sign_in(page, address, "/replay")
        page.wait_for_selector("#replay-whatif-injured", timeout=60000)
        assert page.inner_text("#replay-h") == "Putar ulang latihan: t"
        assert page.inner_text("#replay-clock") == "Waktu 07:45:00"
        assert page.inner_text("#nav-replay") == "Putar ulang"
        inbox = page.inner_text("#replay-inbox")
        assert "Massa kedua" in inbox and "terlewat" in inbox and "dijawab" in inbox
        orders = page.inner_text("#replay-orders")
        assert "dinkes: kirim unit ke kejadian" in orders and "wati" in orders
        table = page.inner_text("#replay-whatif-injured")
        assert "Insiden dari inject: menunggu unit pertama tiba" in table
        assert "lebih baik" in table
        said = page.inner_text("#replay-whatif")
        assert "identik, kejadian demi kejadian, sampai 07:25:00" in said
        assert "injured (dinkes), terlambat: kirim unit ke kejadian milik dinkes sendiri" in said
        assert (
            "second-crowd (polres), terlewat: unit terdekat menurut CAD dikirim pukul 07:15" in said
        )
        assert "kembaran kota tidak memodelkan dampak pesan untuk publik" in said
        # play it back from the start: the clock runs, and nothing had come at 07:02
        page.click("#replay-play")
        page.wait_for_function(
            "() => document.querySelector('#replay-clock').innerText === 'Waktu 07:02:00'",
            timeout=30000,
        )
        page.click("#replay-play")  # stop
        page.wait_for_timeout(1500)
        stood = page.inner_text("#replay-clock")
        assert page.inner_text("#replay-inbox") == "–"
        assert "Massa" not in page.inner_text("#replay-orders")
        page.wait_for_timeout(1500)
        assert page.inner_text("#replay-clock") == stood  # stopped
        assert_clean(page)
    finally:
        server.shutdown()


def test_a_replay_takes_each_order_where_it_was_taken(tmp_path):
    """The paused call takes the trainer's controls alone; a moved order waits for the
    next second's call; the journal running out while paused ends the run there."""
    from datetime import datetime

    from twin.live.run import ReplayedOrders, serve_orders
    from twin.sim import Simulation

    taken: list[tuple[float, str]] = []

    def handler(sim, order):
        taken.append((sim.env.now, order["what"]))

    journal = [
        {"t": 3.0, "paused": True, "order": {"kind": "x", "what": "resume"}},
        {"t": 3.0, "paused": False, "order": {"kind": "x", "what": "at 3"}},
        {"t": 1.5, "paused": False, "order": {"kind": "x", "what": "moved"}},
        {"t": 6.0, "paused": True, "order": {"kind": "x", "what": "never"}},
    ]
    sim = Simulation(
        duration=10.0, seed=0, start=datetime.fromisoformat("2026-12-01T07:00:00+07:00")
    )
    book = ReplayedOrders(journal, {"x": handler})
    sim.env.process(serve_orders(sim, book))

    def pauser():
        yield sim.env.timeout(3.0)
        assert book.take(sim, only=("x",)) == 1  # the resume, not the tick's order
        yield sim.env.timeout(2.0)
        book.take(sim, only=("x",))  # paused at 5 s: nothing left to resume it

    sim.env.process(pauser())
    sim.run()
    assert taken == [(2.0, "moved"), (3.0, "resume"), (3.0, "at 3")]
    assert sim.stopped == "the exercise ended here, paused" and sim.env.now == 5.0


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=60),
            st.from_regex(r'\{"t": -?[0-9.e]{1,6}, "order": .{0,20}\}', fullmatch=True),
        ),
        max_size=5,
    )
)
def test_the_order_journal_reader_names_the_line_it_cannot_read(tmp_path, lines):
    from twin.live.run import read_orders

    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        journal = read_orders(path)
    except InputError as exc:
        assert str(exc).startswith(f"{path}, line ")
        return
    for entry in journal:
        assert isinstance(entry["t"], float) and isinstance(entry["order"], dict)
        json.dumps(entry)
