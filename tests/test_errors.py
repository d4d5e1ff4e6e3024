"""The one "did you mean … known: …" helper."""

from critflow.errors import suggest


def test_suggest_names_the_nearest_and_the_known_names():
    assert suggest("Coo", ["Li", "Co", "Ni"], "Elements") == "Did you mean 'Co'? Elements: Co, Li, Ni."
    # nothing close: only the list; nothing at all: 'none'; a further sentence after it
    assert suggest("zinc", ["Li", "Co"], "Elements") == "Elements: Co, Li."
    assert (
        suggest("feed", [], "Inputs of 'market'", then="Add the flow.")
        == "Inputs of 'market': none. Add the flow."
    )
    # long lists are cut, with the count
    names = [f"p{i:02d}" for i in range(30)]
    assert suggest("x", names, "Processes", limit=3) == "Processes: p00, p01, p02, … (30 in all)."
