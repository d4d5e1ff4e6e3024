"""The one reader of user CSV tables (series, empirical samples, supply shares)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.indicators.criticality import read_supply_shares, supply_shares
from critflow.model.tables import parse_csv, read_csv_file


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=30))
def test_every_finite_float_reads_back_exactly(values):
    text = "# a comment line\nvalue\n" + "\n".join(repr(v) for v in values) + "\n"
    read = parse_csv(text, "samples.csv").numbers("value")
    assert read.tolist() == values


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("1,5", "decimal comma"),
        ("1 200", "thousands separator"),
        ("12 t", "a unit"),
        ("nan", "NaN or infinity"),
        ("1e999", "NaN or infinity"),
        ("", "is empty"),
    ],
)
def test_a_bad_cell_is_named_by_file_line_and_column(cell, why):
    text = f'material,share\nLi,0.5\n# note\nCo,"{cell}"\n'
    with pytest.raises(CritflowError, match=rf"shares.csv, line 4.*column 'share'.*{why}"):
        parse_csv(text, "shares.csv").numbers("share")


def test_a_missing_column_names_the_nearest_header():
    with pytest.raises(CritflowError, match=r"line 1.*no column 'share'.*shares"):
        parse_csv("material,shares\nLi,1\n", "f.csv").column("share")


def test_supply_shares_from_a_file_replace_the_shipped_rows(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "material,stage,scope,country,share\n"
        "Cobalt,processing,EU,Chile,0.7\nCobalt,processing,EU,Argentina,0.3\n",
        encoding="utf-8",
    )
    shares = supply_shares(read_supply_shares(path))
    mine = shares[(shares.material == "Cobalt") & (shares.scope == "EU")]
    mine = mine[mine.stage == "processing"]
    assert math.isclose(mine.share.sum(), 1.0, abs_tol=1e-12)
    assert set(mine.country) == {"Chile", "Argentina"}


def test_supply_shares_with_a_bad_cell_name_the_line(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "material,stage,scope,country,share\nLi,processing,EU,Chile,70 %\n", encoding="utf-8"
    )
    with pytest.raises(CritflowError, match=r"mine.csv, line 2.*'share'.*a unit"):
        read_supply_shares(path)


def test_a_folder_or_binary_file_is_refused(tmp_path):
    with pytest.raises(CritflowError, match="is a folder"):
        read_csv_file(tmp_path)
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b\n\x00\x01")
    with pytest.raises(CritflowError, match="binary file"):
        read_csv_file(path)
