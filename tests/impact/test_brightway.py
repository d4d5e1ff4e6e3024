"""The Brightway cross-check: bw2calc computes the exported foreground to critflow's score."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import critflow
from critflow.impact import assess
from tests.conftest import EXAMPLE

pytest.importorskip("bw2calc")


@pytest.fixture(scope="module")
def example_impacts():
    model = critflow.load_model(EXAMPLE)
    return assess(model, critflow.solve(model))


def test_bw2calc_gives_the_same_score_for_every_scenario_and_period(example_impacts):
    from critflow.impact.brightway import bw2calc_score

    impacts = example_impacts
    for s, scenario in enumerate(impacts.scenarios):
        for p, period in enumerate(impacts.periods):
            score = bw2calc_score(impacts, scenario, int(period))
            assert score == pytest.approx(impacts.total[s, p], rel=1e-9)


def test_datapackage_written_to_disk_loads_in_bw2calc(tmp_path, example_impacts):
    import bw2calc as bc
    import bw_processing as bwp
    from bw_processing.io_helpers import generic_zipfile_filesystem

    from critflow.impact.brightway import datapackage

    export = datapackage(example_impacts, "baseline", 2030, tmp_path / "critflow.zip")
    loaded = bwp.load_datapackage(
        generic_zipfile_filesystem(dirpath=tmp_path, filename="critflow.zip", write=False)
    )
    lca = bc.LCA(export.demand, data_objs=[loaded])
    lca.lci()
    lca.lcia()
    s, p = example_impacts.scenarios.index("baseline"), list(example_impacts.periods).index(2030)
    assert lca.score == pytest.approx(example_impacts.total[s, p], rel=1e-9)


BW2DATA_SCRIPT = """
import json, sys
import bw2data as bd, bw2calc as bc
import critflow
from critflow.impact import assess
from critflow.impact.brightway import write_bw2data

bd.projects.set_current("critflow-test")
bio = bd.Database("biosphere")
bio.write({("biosphere", "co2"): {"name": "Carbon dioxide, fossil", "type": "emission", "unit": "kilogram"}})
model = critflow.load_model(sys.argv[1])
impacts = assess(model, critflow.solve(model, ["baseline"]))
# the user's own background: one activity per item emitting its factor as fossil CO2
bg = {}
for k, item in enumerate(impacts.items):
    bg[("user-background", item)] = {
        "name": item, "unit": impacts.item_units[k],
        "exchanges": [
            {"input": ("user-background", item), "amount": 1.0, "type": "production"},
            {"input": ("biosphere", "co2"), "amount": float(impacts.item_factors[0, -1, k]), "type": "biosphere"},
        ],
    }
bd.Database("user-background").write(bg)
method = bd.Method(("test", "gwp"))
method.register()
method.write([(("biosphere", "co2"), 1.0)])
links = {item: ("user-background", item) for item in impacts.items}
system = write_bw2data(impacts, "baseline", int(impacts.periods[-1]), "critflow-foreground", links)
lca = bc.LCA({system: 1}, ("test", "gwp"))
lca.lci(); lca.lcia()
print(json.dumps({"bw": lca.score, "critflow": float(impacts.total[0, -1])}))
"""


def test_write_bw2data_links_items_to_a_users_project(tmp_path):
    pytest.importorskip("bw2data")
    (tmp_path / "bw").mkdir()
    env = {**os.environ, "BRIGHTWAY2_DIR": str(tmp_path / "bw")}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BW2DATA_SCRIPT), str(EXAMPLE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(result.stdout.strip().splitlines()[-1])
    # bw2data writes exchange amounts through bw_processing's float32 uncertainty fields, so
    # agreement is to float32 precision here (the datapackage path above agrees to 1e-9)
    assert np.isclose(scores["bw"], scores["critflow"], rtol=1e-6)
