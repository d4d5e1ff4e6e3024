"""Trade tables (UN Comtrade CSV, Eurostat SDMX-CSV and TSV) through a mapping file.

The extracts below are synthetic, written in each source's download format to test the readers;
their numbers are no data. Expected element masses are goods mass x content, the content from the
compound's formula (Li2CO3: 2 x 6.94 / 73.888 = 0.18785) or the mapping's number.
"""

from __future__ import annotations

import pytest

from critflow import data
from critflow.errors import CritflowError
from critflow.model.trade_tables import (
    Countries,
    map_trade,
    model_values,
    read_mapping,
    read_trade_table,
)

LI2CO3 = 2 * 6.94 / 73.888  # the Li fraction of Li2CO3, by hand (IUPAC abridged atomic weights)

COMTRADE_HEADER = (
    "typeCode,freqCode,refPeriodId,refYear,refMonth,period,reporterCode,reporterISO,reporterDesc,"
    "flowCode,flowDesc,partnerCode,partnerISO,partnerDesc,cmdCode,cmdDesc,qtyUnitAbbr,qty,netWgt,"
    "primaryValue\n"
)
COMTRADE = (
    COMTRADE_HEADER
    + """C,A,20220101,2022,52,2022,56,BEL,Belgium,M,Import,152,CHL,Chile,283691,Lithium carbonates,kg,1000,1000,30000
C,A,20220101,2022,52,2022,56,BEL,Belgium,M,Import,643,RUS,Russian Federation,750210,Nickel not alloyed,kg,500,500,9000
C,A,20220101,2022,52,2022,56,BEL,Belgium,M,Import,156,CHN,China,999999,Something else,kg,10,10,1
C,A,20220101,2022,52,2022,56,BEL,Belgium,M,Import,0,W00,World,283691,Lithium carbonates,kg,1000,1000,30000
C,A,20220101,2022,52,2022,56,BEL,Belgium,RM,Re-import,152,CHL,Chile,283691,Lithium carbonates,kg,7,7,1
"""
)

EUROSTAT_TSV = (
    "freq,reporter,partner,product,flow,indicators\\TIME_PERIOD\t2021 \t2022 \n"
    "A,BE,CL,28369100,1,QUANTITY_IN_100KG\t10 \t12 p\n"
    "A,BE,CL,28369100,1,VALUE_IN_EUROS\t300000 \t400000 \n"
    "A,FR,EL,28369100,2,QUANTITY_IN_100KG\t: \t1 \n"
    "A,EU27_2020,CN,28220000,1,QUANTITY_IN_100KG\t5 \t5 \n"
)

EUROSTAT_CSV = """DATAFLOW,LAST UPDATE,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE,OBS_FLAG
ESTAT:DS-045409(1.0),01/01/24,A,BE,CL,28369100,1,QUANTITY_IN_100KG,2022,12,p
ESTAT:DS-045409(1.0),01/01/24,A,BE,XX,28369100,1,QUANTITY_IN_100KG,2022,3,
"""


@pytest.fixture(scope="module")
def mapping():
    return read_mapping(data.data_path("trade_mapping_battery.csv"))


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_comtrade_through_the_mapping(tmp_path, mapping):
    records = read_trade_table(_write(tmp_path, "comtrade.csv", COMTRADE))
    assert {r.direction for r in records} == {"import"}  # the re-import is not the goods' origin
    mapped = map_trade(records, mapping)
    li = [r for r in mapped.rows if r["element"] == "Li"]
    assert len(li) == 1 and li[0]["origin"] == "CL" and li[0]["destination"] == "BE"
    assert li[0]["element_kg"] == pytest.approx(1000 * LI2CO3, rel=1e-4)
    assert li[0]["destination_group"] == "EU27" and li[0]["origin_group"] == "CL"
    ni = [r for r in mapped.rows if r["element"] == "Ni"]
    assert ni[0]["element_kg"] == pytest.approx(500 * 0.99)
    assert mapped.unmapped == {"999999": 10.0}  # listed, not dropped
    assert mapped.aggregates == {"WORLD": 1000.0}  # the world total would count Chile twice
    values = model_values(mapped, "imports", {"CL": "CL", "RU": "RU", "BE": "BE-other"})
    assert values["region"]["CL>BE-other"]["Li"][2022] == pytest.approx(LI2CO3, rel=1e-4)  # t


def test_eurostat_tsv_and_csv(tmp_path, mapping):
    records = read_trade_table(_write(tmp_path, "comext.tsv", EUROSTAT_TSV))
    # euro values are no masses; ':' is missing; 100 kg units; EL is Greece
    masses = {(r.year, r.reporter, r.partner, r.direction): r.goods_kg for r in records}
    assert masses == {
        (2021, "BE", "CL", "import"): 1000.0,
        (2022, "BE", "CL", "import"): 1200.0,
        (2022, "FR", "GR", "export"): 100.0,
        (2021, "EU27", "CN", "import"): 500.0,
        (2022, "EU27", "CN", "import"): 500.0,
    }
    mapped = map_trade(records, mapping)
    co = [r for r in mapped.rows if r["element"] == "Co" and r["year"] == 2022]
    # Co(OH)2: 58.933 / (58.933 + 2 x 17.007) = 0.6341
    assert co[0]["element_kg"] == pytest.approx(500 * 58.933 / 92.947, rel=1e-4)
    assert co[0]["origin"] == "CN" and co[0]["destination"] == "EU27"
    intra = [r for r in mapped.rows if r["origin"] == "FR"]
    assert intra[0]["origin_group"] == "EU27" and intra[0]["destination_group"] == "EU27"
    with pytest.raises(CritflowError) as info:
        read_trade_table(_write(tmp_path, "bad.csv", EUROSTAT_CSV))
    assert "line 3, partner" in str(info.value) and "'XX' is no ISO 3166" in str(info.value)
    good = EUROSTAT_CSV.splitlines()[:2]
    records = read_trade_table(_write(tmp_path, "good.csv", "\n".join(good) + "\n"))
    assert records[0].goods_kg == 1200.0


def test_countries_and_mapping_errors(tmp_path):
    countries = Countries.load()
    assert len(countries.eu27) == 27 and "BE" in countries.eu27 and "NO" not in countries.eu27
    assert countries.resolve("BEL") == countries.resolve("56") == countries.resolve("be") == "BE"
    assert countries.resolve("NA") == "NA"  # Namibia, not a missing value
    assert countries.resolve("EU27_2020") == "EU27" and countries.resolve("ZZ") is None
    bad = _write(
        tmp_path,
        "mapping.csv",
        "code,flow,element,content,compound,source\n"
        "283691,imports,Li,,Li2CO3,formula\n"
        "28369x,imports,Li,0.2,,x\n"
        "750210,imports,Ni,1.5,,x\n"
        "282200,imports,Ni,,Co(OH)2,x\n"
        "282520,imports,Li,0.1,,\n",
    )
    with pytest.raises(CritflowError) as info:
        read_mapping(bad)
    message = str(info.value)
    for expected in (
        "line 3",
        "line 4",
        "line 5",
        "Ni is not in Co(OH)2",
        "line 6",
        "gives no source",
    ):
        assert expected in message
    with pytest.raises(CritflowError) as info:
        model_values(
            map_trade(
                read_trade_table(_write(tmp_path, "c.csv", COMTRADE)),
                read_mapping(data.data_path("trade_mapping_battery.csv")),
            ),
            "imports",
            {"CL": "CL"},
        )
    assert "BE" in str(info.value) and "RU" in str(info.value)


@pytest.mark.parametrize("name", ["battery", "magnet", "pgm"])
def test_shipped_mappings_read_cleanly(name):
    rows = read_mapping(data.data_path(f"trade_mapping_{name}.csv"))
    assert rows and all(0 < r.content <= 1 and r.source for r in rows)
    by_code: dict[str, float] = {}
    for r in rows:
        by_code[r.code] = by_code.get(r.code, 0.0) + r.content
    assert all(total <= 1 for total in by_code.values())  # a code's elements fit in its goods
    assert data.table(f"trade_mapping_{name}").source.notna().all()


def test_a_device_or_pipe_is_named_not_called_a_folder(tmp_path):
    import os

    import pytest

    from critflow.errors import CritflowError
    from critflow.model.trade_tables import read_mapping, read_trade_table

    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    for path, kind in (("/dev/zero", "a device"), (pipe, "a named pipe")):
        for read in (read_trade_table, read_mapping):
            with pytest.raises(CritflowError, match=kind):  # once: "is not a file but a folder"
                read(path)
