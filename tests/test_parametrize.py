"""Choosing models: --models, the ini setting, aliases, ids, the models marker."""

from __future__ import annotations

import pytest

from pytest_modelmigrate.models import (
    ModelSpecError,
    marker_filter,
    merge_registry,
    parse_models,
    sanitize_id,
)

BASIC = """
import pytest

def test_one(model):
    print("MODEL", model)

@pytest.mark.parametrize("case", ["a", "b"])
def test_case(model, case):
    pass

def test_plain():
    pass
"""


def test_models_option_parametrizes_in_order_with_names_as_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(BASIC)
    result = pytester.runpytest("--models=gpt-4o,gpt-5", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "test_models_option_parametrizes_in_order_with_names_as_ids.py::test_one[[]gpt-4o[]]",
            "*::test_one[[]gpt-5[]]",
            "*::test_case[[]a-gpt-4o[]]",
            "*::test_case[[]a-gpt-5[]]",
            "*::test_case[[]b-gpt-4o[]]",
            "*::test_case[[]b-gpt-5[]]",
            "*::test_plain",
            "7 tests collected*",
        ]
    )


def test_alias_keeps_ids_short_and_passes_the_exact_snapshot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_it(model, model_spec):
            assert model == {"old": "gpt-4o-2024-08-06", "new": "gpt-5"}[model_spec.id]
            assert model_spec.name == model
        """
    )
    result = pytester.runpytest("--models=old=gpt-4o-2024-08-06,new=gpt-5", "-v")
    result.stdout.fnmatch_lines(["*test_it[[]old[]] PASSED*", "*test_it[[]new[]] PASSED*"])
    result.assert_outcomes(passed=2)


def test_ini_setting_and_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        modelmigrate_models =
            gpt-4o
            gpt-5
        """
    )
    pytester.makepyfile("def test_it(model): pass")
    pytester.runpytest("-v").stdout.fnmatch_lines(
        ["*test_it[[]gpt-4o[]] PASSED*", "*test_it[[]gpt-5[]] PASSED*"]
    )
    result = pytester.runpytest("-v", "--models=gpt-5")
    result.stdout.fnmatch_lines(["*test_it[[]gpt-5[]] PASSED*", "*1 passed, 1 deselected*"])
    result.stdout.no_fnmatch_line("*test_it[[]gpt-4o[]] PASSED*")


def test_model_without_configuration_fails_naming_both_settings(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass\ndef test_other(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no models are configured*--models=a,b*modelmigrate_models*"])


def test_test_that_parametrizes_model_itself_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("model", ["mine"])
        def test_it(model):
            assert model == "mine"
        """
    )
    result = pytester.runpytest("--models=gpt-4o,gpt-5", "-v")
    result.stdout.fnmatch_lines(["*test_it[[]mine[]] PASSED*"])
    result.assert_outcomes(passed=1)


def test_models_marker_only_skip_xfail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.models(only=["a", "b"])
        def test_only(model):
            pass

        @pytest.mark.models(skip=["c"])
        def test_skip(model):
            pass

        @pytest.mark.models(xfail={"c": "known drift on c"})
        def test_xfail(model):
            assert model != "model-c"
        """
    )
    result = pytester.runpytest("--models=a=model-a,b=model-b,c=model-c", "-v", "-rx")
    result.stdout.fnmatch_lines(
        [
            "*test_only[[]a[]] PASSED*",
            "*test_only[[]b[]] PASSED*",
            "*test_skip[[]a[]] PASSED*",
            "*test_skip[[]b[]] PASSED*",
            "*test_xfail[[]a[]] PASSED*",
            "*test_xfail[[]b[]] PASSED*",
            "XFAIL *test_xfail[[]c[]]*known drift on c*",
        ]
    )
    result.assert_outcomes(passed=6, xfailed=1)


def test_models_marker_with_unknown_model_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.models(only=["gpt-6"])
        def test_it(model):
            pass
        """
    )
    result = pytester.runpytest("--models=gpt-4o,gpt-5")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*test_it: *names 'gpt-6', which is not a configured model*gpt-4o, gpt-5*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_subset_of_models_keeps_other_models_collected_then_deselected(pytester: pytest.Pytester) -> None:
    """The registry (ini) is parametrized; a subset on the command line deselects the rest late."""
    pytester.makeini("[pytest]\nmodelmigrate_models = gpt-4o, gpt-5\n")
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest("--models=gpt-5", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_it[[]gpt-5[]]", "*1/2 tests collected (1 deselected)*"])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("gpt-4o,,gpt-5", "model #2 is empty"),
        ("gpt-4o,gpt-4o", "listed twice"),
        ("a=gpt-4o,a=gpt-5", "would share the id 'a'"),
        ("=gpt-4o", "needs both an alias and a model name"),
        ("a/b=gpt-4o", "alias 'a/b' may use only"),
    ],
)
def test_bad_models_values_are_usage_errors(pytester: pytest.Pytester, value: str, message: str) -> None:
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest(f"--models={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--models: *{message}*"])


def test_report_header_shows_models_and_record_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest("--models=old=gpt-4o,gpt-5")
    result.stdout.fnmatch_lines(
        ["modelmigrate: models old=gpt-4o, gpt-5 (incumbent old, from --models); record mode none;*"]
    )


# -- pure parsing ----------------------------------------------------------------------------


def test_parse_models_sanitizes_ids_of_names_with_path_characters() -> None:
    specs = parse_models("meta-llama/Llama-3.1-8B:q4,gpt-4o", source="--models")
    assert [(s.id, s.name) for s in specs] == [
        ("meta-llama-Llama-3.1-8B-q4", "meta-llama/Llama-3.1-8B:q4"),
        ("gpt-4o", "gpt-4o"),
    ]
    assert sanitize_id("x" * 300) == "x" * 64


def test_sanitized_ids_that_clash_are_refused() -> None:
    with pytest.raises(ModelSpecError, match="would share the id 'a-b'"):
        parse_models("a/b,a:b", source="--models")


def test_merge_registry_refuses_an_alias_that_means_two_models() -> None:
    ini = parse_models("old=gpt-4o", source="ini")
    with pytest.raises(ModelSpecError, match="'old' names 'gpt-5'"):
        merge_registry(ini, parse_models("old=gpt-5", source="--models"))


def test_marker_filter_accepts_ids_or_names() -> None:
    registry = parse_models("old=gpt-4o-2024-08-06,new=gpt-5", source="--models")
    filt = marker_filter({"only": ["gpt-5"], "xfail": {"old": "why"}}, [], registry, where="t")
    assert [filt.allows(s) for s in registry] == [False, True]
    assert filt.xfail_reason(registry[0]) == "why"
    with pytest.raises(ModelSpecError, match="unknown argument"):
        marker_filter({"onyl": ["gpt-5"]}, [], registry, where="t")


def test_every_setting_of_the_table_is_an_option_or_ini_key_pytest_knows(pytester: pytest.Pytester) -> None:
    from pytest_modelmigrate.settings import INI_NAMES, SETTINGS

    result = pytester.runpytest("--help")
    text = result.stdout.str()
    for setting in SETTINGS:
        if setting.flag:
            assert setting.flag in text, setting.flag
        if setting.ini:
            assert setting.ini in text, setting.ini
    assert set(INI_NAMES) == {s.ini for s in SETTINGS if s.ini}


def test_misspelt_ini_key_says_which_setting_was_meant(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_model = gpt-4o\n")
    pytester.makepyfile("def test_it(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "*ini modelmigrate_model is not a pytest-modelmigrate setting and is ignored (did you mean modelmigrate_models?)*"
        ]
    )
