"""Breaking the PRODCOM reader from outside (issue 23): each table once gave a silently wrong
mass. The extracts are synthetic, in Eurostat's SDMX-CSV download format; no data."""

from __future__ import annotations

import pytest

from critflow.errors import CritflowError
from critflow.model.production_tables import read_production_table

HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,product,indicators,TIME_PERIOD,OBS_VALUE,OBS_FLAG\n"
D = "ESTAT:DS-059358(1.0),01/06/24,A"


def _table(tmp_path, rows):
    path = tmp_path / "prodcom.csv"
    path.write_text(HEADER + "\n".join(f"{D},{r}" for r in rows) + "\n")
    return path


def test_a_unit_given_twice_differently_is_refused(tmp_path):
    """1000 with QNTUNIT kg and again t: 1 t or 1000 t? It was read as 1000 t (the last unit),
    silently 1000 times the first reading."""
    path = _table(
        tmp_path,
        [
            "BE,11111111,PRODQNT,2022,1000,",
            "BE,11111111,QNTUNIT,2022,kg,",
            "BE,11111111,QNTUNIT,2022,t,",
        ],
    )
    with pytest.raises(
        CritflowError, match=r"line 4.*BE 11111111 2022: the unit is given again.*kg"
    ):
        read_production_table(path)


def test_the_same_unit_twice_is_read(tmp_path):
    path = _table(
        tmp_path,
        [
            "BE,11111111,PRODQNT,2022,1000,",
            "BE,11111111,QNTUNIT,2022,t,",
            "BE,11111111,QNTUNIT,2022, t ,",
        ],
    )
    (record,) = read_production_table(path).records
    assert record.quantity == 1e6 and record.unit == "kg"


def test_a_mass_above_the_limit_after_its_unit_is_refused(tmp_path):
    """1e14 t is 1e17 kg, beyond the 1e15 kg a table row may hold (as for trade tables); the
    check ran before the unit's factor of 1000 and let it through."""
    path = _table(tmp_path, ["BE,11111111,PRODQNT,2022,1e14,", "BE,11111111,QNTUNIT,2022,t,"])
    with pytest.raises(CritflowError, match=r"line 2.*1e\+17 kg is more than 1e\+15 kg"):
        read_production_table(path)
    ok = _table(tmp_path, ["BE,11111111,PRODQNT,2022,1e12,", "BE,11111111,QNTUNIT,2022,t,"])
    assert read_production_table(ok).records[0].quantity == 1e15
