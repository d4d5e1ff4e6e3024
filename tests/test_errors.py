"""The one "did you mean … known: …" helper."""

from critflow.errors import field_path, suggest, validation_message, validation_problems


def test_suggest_names_the_nearest_and_the_known_names():
    assert (
        suggest("Coo", ["Li", "Co", "Ni"], "Elements") == "Did you mean 'Co'? Elements: Co, Li, Ni."
    )
    # nothing close: only the list; nothing at all: 'none'; a further sentence after it
    assert suggest("zinc", ["Li", "Co"], "Elements") == "Elements: Co, Li."
    assert (
        suggest("feed", [], "Inputs of 'market'", then="Add the flow.")
        == "Inputs of 'market': none. Add the flow."
    )
    # long lists are cut, with the count
    names = [f"p{i:02d}" for i in range(30)]
    assert suggest("x", names, "Processes", limit=3) == "Processes: p00, p01, p02, … (30 in all)."


def test_pydantic_errors_become_problems_with_field_paths():
    # the shape of pydantic's ValidationError.errors(), written out by hand
    errors = [
        {"loc": ("data", "mass", 0), "msg": "Value error, must be positive", "input": -3},
        {"loc": ("data", "mass", 0), "msg": "Value error, must be positive", "input": -3},
        {"loc": (), "msg": "Input should be a valid dictionary", "input": [1]},
        {"loc": ("kind",), "msg": "Input should be 'lot', got 'lots'", "input": "lots"},
    ]
    problems = validation_problems(errors, "passport.json")
    assert [str(p) for p in problems] == [
        "passport.json: data.mass.0: must be positive (got -3)",
        "passport.json: (document): Input should be a valid dictionary",
        "passport.json: kind: Input should be 'lot', got 'lots'",
    ]
    assert field_path(("a", 1)) == "a.1"
    assert validation_message(errors[0], with_input=False) == "must be positive"


def test_nearest_ignores_case_when_nothing_closer_is_found():
    from critflow.errors import nearest

    assert nearest("BATTERY", ["battery", "ndfeb", "pv"]) == "Did you mean 'battery'?"
    assert nearest("NDFEB", ["battery", "ndfeb", "pv"]) == "Did you mean 'ndfeb'?"
    assert nearest("co", ["Co", "Ni", "Li"]) == "Did you mean 'Co'?"
    assert nearest("Co", ["co", "Co"]) == "Did you mean 'Co'?"  # an exact-case match first
    assert nearest("zzz", ["Co", "Ni"]) == ""


def test_a_long_input_is_not_echoed_whole_in_a_validation_message():
    from critflow.errors import validation_message

    message = validation_message({"msg": "Value error, not a number", "input": "x" * 2_000_000})
    assert len(message) < 200 and "2,000,000 characters" in message
    assert validation_message({"msg": "not a number", "input": "abc"}) == "not a number (got 'abc')"


def test_a_message_names_at_most_fifty_problems_and_counts_the_rest():
    """Any error (not only those built with capped()) prints at most MAX_REPORTED paragraphs and
    one that counts the rest; ``problems`` keeps every one for a program."""
    from critflow.errors import MAX_REPORTED, CritflowError, Problem, capped

    many = [
        Problem(f"model.yaml (region R{i})", "needs a composition", "Add one.") for i in range(600)
    ]
    error = CritflowError(many)
    text = str(error)
    assert len(error.problems) == 600
    assert text.count("needs a composition") == MAX_REPORTED
    assert "and 550 more problems after these" in text
    assert "region R49): needs a composition" in text
    assert text.endswith(
        "(region R50): and 550 more problems after these. Fix the ones above; "
        "most often one mistake repeats."
    )
    assert "region R51)" not in text
    # a capped() error is printed whole: its 51st paragraph is its own count
    assert str(capped(many)).count("more problem") == 1
    # 51 named problems: 50 named and one counted; counts of merged capped errors add up
    assert "and 1 more problem after these" in str(CritflowError(many[:51]))
    merged = CritflowError(capped(many[:300]).problems + capped(many[300:]).problems)
    assert "and 550 more problems after these" in str(merged)  # 600 in all, 50 named
    assert str(merged).count("needs a composition") == MAX_REPORTED
