"""The MSEL and teams readers: YAML, CSV and Excel, each problem named where it is."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin._errors import InputError
from twin.scenario import ScenarioError
from twin.scenario.exercise import Teams, load_exercise, load_teams, read_msel

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "scenarios" / "exercises"
TWIN = [sys.executable, "-m", "twin.cli"]
HEADER = "id,at,title,team,does,incident_type,priority,lat,lon,expect,within,if_missed"


def sheet(tmp_path: Path, *rows: str, name: str = "msel.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


def test_the_shipped_msel_reads_as_a_trainer_wrote_it():
    exercise, where = load_exercise(SHIPPED / "helsinki_rally.yaml")
    ids = [i.id for i in exercise.injects]
    assert ids[:2] == ["crowd-gathers", "crowd-unruly"]
    assert where[0] == "helsinki_rally_msel.csv row 2"
    unruly = exercise.injects[1]
    assert (unruly.does, unruly.expect, unruly.within, unruly.if_missed) == (
        "crowd",
        "dispatch",
        300.0,
        ["unrest-spreads"],
    )
    assert exercise.injects[2].at is None  # a follow-up only


def test_a_bad_cell_is_named_by_row_and_column(tmp_path):
    path = sheet(
        tmp_path,
        "a,07:40,Crowd,polres,crowd,public_order,1,60.17,24.94,dispatch,5min,",
        "b,07:45,Injured,dinkes,incident,medical,7,60.17,24.94,dispatch,soon,",
    )
    with pytest.raises(ScenarioError) as err:
        read_msel(path)
    said = str(err.value)
    assert "row 3, column G (priority): Input should be less than or equal to 3" in said
    assert "row 3, column K (within): not a duration" in said
    assert "row 2" not in said


def test_an_unknown_column_and_an_inject_without_its_place(tmp_path):
    path = tmp_path / "msel.csv"
    path.write_text("id,at,title,wher\na,07:40,Crowd,here\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"row 1, column D: unknown column 'wher'"):
        read_msel(path)
    path = sheet(tmp_path, "a,07:40,Crowd,polres,crowd,,,,,,,")
    with pytest.raises(
        ScenarioError, match=r"row 2, column H \(lat\): a crowd happens at one place"
    ):
        read_msel(path)


def test_rows_that_disagree_are_named(tmp_path):
    exercise = tmp_path / "ex.yaml"
    exercise.write_text(
        yaml.safe_dump({"name": "t", "scenario": "s.yaml", "msel": "msel.csv"}), encoding="utf-8"
    )
    sheet(
        tmp_path,
        "a,07:40,One,polres,message,,,,,public_message,5min,ghost",
        "a,07:41,Two,polres,message,,,,,,,",
        "c,,Orphan,polres,message,,,,,,,",
        "d,07:42,Loop,polres,message,,,,,public_message,5min,e",
        "e,,Back,polres,message,,,,,public_message,5min,d",
    )
    with pytest.raises(ScenarioError) as err:
        load_exercise(exercise)
    said = str(err.value)
    assert "row 3: id 'a' is also row 2's" in said
    assert "row 2 if_missed: no inject 'ghost' in the MSEL" in said
    assert "row 4 at: no time, and no inject names it in if_missed" in said
    assert "row 5 if_missed: e has its own time" not in said
    assert "row 6 if_missed: d has its own time: a follow-up has no at" in said


def test_an_excel_sheet_reads_like_the_csv(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    ws = book.active
    ws.append(HEADER.split(","))
    ws.append(
        [
            "a",
            dt.time(7, 40),
            "Crowd",
            "polres",
            "crowd",
            "public_order",
            1,
            60.17,
            24.94,
            "dispatch",
            "5min",
            None,
        ]
    )
    ws.append([None] * 12)  # a blank row between: skipped
    ws.append(
        [
            "b",
            "+50min",
            "Injured",
            "dinkes",
            "incident",
            "medical",
            2.0,
            60.17,
            24.94,
            "dispatch",
            dt.time(0, 5),
            None,
        ]
    )
    book.save(tmp_path / "msel.xlsx")
    injects, where = read_msel(tmp_path / "msel.xlsx")
    assert [(i.id, i.at, i.within, i.priority) for i in injects] == [
        ("a", "07:40:00", 300.0, 1),
        ("b", "+50min", 300.0, 2),
    ]
    assert where == ["row 2", "row 4"]
    ws.cell(row=4, column=11, value="later")
    book.save(tmp_path / "msel.xlsx")
    with pytest.raises(ScenarioError, match=r"row 4, column K \(within\): not a duration"):
        read_msel(tmp_path / "msel.xlsx")
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    with pytest.raises(InputError, match=r"broken\.xlsx: not a readable Excel workbook"):
        read_msel(tmp_path / "broken.xlsx")


def test_teams_that_share_a_unit_are_refused(tmp_path):
    path = tmp_path / "teams.yaml"
    path.write_text(
        yaml.safe_dump(
            {"teams": [{"name": "a", "units": ["P-1"]}, {"name": "b", "units": ["P-1"]}]}
        ),
        encoding="utf-8",
    )
    with pytest.raises(ScenarioError, match=r"teams\[1\].units: P-1 is a's already"):
        load_teams(path)
    teams = Teams.model_validate({"teams": [{"name": "a", "units": ["P-1"]}]})
    assert teams.owner("P-1") == "a" and teams.owner("P-2") is None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(st.text(max_size=12), min_size=0, max_size=14), min_size=0, max_size=6),
    st.sampled_from([",", ";", "\t"]),
)
def test_any_sheet_loads_or_is_refused_with_where(tmp_path, rows, sep):
    """Whatever a spreadsheet holds, the reader gives injects or an InputError that names
    the sheet; never another exception."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep)
    writer.writerow(HEADER.split(","))
    for row in rows:
        writer.writerow(row)
    path = tmp_path / "h.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    try:
        injects, where = read_msel(path)
    except InputError as exc:
        assert str(path) in str(exc)
    else:
        assert len(injects) == len(where)


def test_check_prints_the_exercise_or_the_problems(tmp_path, helsinki_city):
    work = tmp_path / "ex"
    shutil.copytree(SHIPPED, work)
    shutil.copy(ROOT / "scenarios" / "helsinki_demonstration.yaml", tmp_path)
    (tmp_path / "cities").mkdir()
    (tmp_path / "cities" / "helsinki").symlink_to(helsinki_city.path)
    proc = subprocess.run(
        [*TWIN, "exercise", "check", "ex/helsinki_rally.yaml", "--teams", "ex/helsinki_teams.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6 injects from 07:35 to 08:15, 1 follow-up, 5 with an expected order" in proc.stdout
    assert "team dinkes: 3 units, 3 injects (Medical desk (Dinas Kesehatan))" in proc.stdout
    # an inject far away, a team nobody has, and a unit the scenario lacks
    msel = (work / "helsinki_rally_msel.csv").read_text(encoding="utf-8")
    msel = msel.replace("60.1703,24.9445", "60.3,25.3").replace(
        ",dinkes,incident", ",medis,incident"
    )
    (work / "helsinki_rally_msel.csv").write_text(msel, encoding="utf-8")
    teams = (work / "helsinki_teams.yaml").read_text().replace("A-1, A-2", "A-1, A-9")
    (work / "helsinki_teams.yaml").write_text(teams)
    proc = subprocess.run(
        [*TWIN, "exercise", "check", "ex/helsinki_rally.yaml", "--teams", "ex/helsinki_teams.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    said = " ".join(proc.stderr.split())
    assert (
        "helsinki_rally_msel.csv row 5 place: point (60.30000, 25.30000) is" in said
        and "km outside the city" in said
    )
    assert "helsinki_rally_msel.csv row 5 team: no team 'medis' (the teams: polres, dinkes)" in said
    assert "teams[1].units: A-9: not units of helsinki-demonstration" in said
    assert "Traceback" not in proc.stderr
