"""Every setting is declared once and validated before any test runs."""

from __future__ import annotations

import pytest

from pytest_modelmigrate.results import cell_label, percent

BAD_INI = [
    ("modelmigrate_alpha = abc", "ini modelmigrate_alpha: 'abc' is not a number between 0 and 1"),
    ("modelmigrate_alpha = nan", "ini modelmigrate_alpha: 'nan' is not a number between 0 and 1"),
    ("modelmigrate_power = 1", "ini modelmigrate_power: 1 is outside the allowed range (0 to 1)"),
    (
        "modelmigrate_tolerance = -0.1",
        "ini modelmigrate_tolerance: -0.1 is outside the allowed range (0 to 1)",
    ),
    (
        "modelmigrate_emulator_time_scale = fast",
        "ini modelmigrate_emulator_time_scale: 'fast' is not a number*",
    ),
    ("modelmigrate_emulator_port = 70000", "ini modelmigrate_emulator_port: 70000 is not a port number*"),
    ("modelmigrate_emulator_port = http", "ini modelmigrate_emulator_port: 'http' is not a port number*"),
    ("modelmigrate_parse_cache = maybe", "ini modelmigrate_parse_cache: 'maybe' is not true or false"),
    ("modelmigrate_embedder = bert", "ini modelmigrate_embedder: 'bert' is not a scorer*"),
    ("modelmigrate_provider_patterns = claude", "ini modelmigrate_provider_patterns: 'claude' should read*"),
    (
        "modelmigrate_gate = lenient",
        "ini modelmigrate_gate: 'lenient' is not one of strict, no-regression, report",
    ),
    ("modelmigrate_samples = many", "ini modelmigrate_samples: 'many' is not a whole number*"),
]


@pytest.mark.parametrize(("line", "message"), BAD_INI, ids=[line.split(" =")[0] for line, _ in BAD_INI])
def test_a_bad_ini_value_is_a_usage_error_before_any_test_runs(
    pytester: pytest.Pytester, line: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\nmodelmigrate_models = a\n{line}\n")
    pytester.makepyfile("def test_it(model): raise AssertionError('must not run')")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--migration-budget-usd=nan", "--migration-budget-usd: 'nan' is not a finite number*"),
        ("--migration-budget-usd=-1", "--migration-budget-usd: must not be negative, got -1"),
        ("--migration-max-calls=0", "--migration-max-calls: must be at least 1, got 0"),
        ("--samples=0", "--samples: must be at least 1, got 0"),
        ("--migration-tolerance=1", "--migration-tolerance: 1 is outside the allowed range (0 to 1)"),
    ],
)
def test_a_bad_option_value_names_the_option(pytester: pytest.Pytester, option: str, message: str) -> None:
    pytester.makepyfile("def test_it(model): pass")
    result = pytester.runpytest("--models=a", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_the_command_line_wins_over_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = a\nmodelmigrate_gate = report\n")
    pytester.makepyfile("def test_it(model): assert False")
    assert pytester.runpytest().ret == pytest.ExitCode.OK  # report mode from the ini
    assert pytester.runpytest("--migration-gate=strict").ret == pytest.ExitCode.TESTS_FAILED


def test_a_cell_with_a_failure_never_reads_100_percent() -> None:
    assert cell_label(499, 500, []) == "499/500 99.8%"
    assert cell_label(9999, 10000, []) == "9999/10000 99.9%"
    assert cell_label(1, 500, []) == "1/500 0.2%"
    assert cell_label(3, 3, []) == "3/3 100%"
    assert cell_label(0, 3, []) == "0/3   0%"
    assert percent(97, 100) == "97"
    assert cell_label(0, 0, ["missing", "passed"]) == "missing"
    assert cell_label(0, 0, ["xfailed"]) == "xfail"
    assert cell_label(0, 0, ["error"]) == "error"
    assert cell_label(0, 0, ["skipped"]) == "-"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('"g", tolerance=-1', "*@pytest.mark.prompt(tolerance=-1) must be a pass-rate drop*"),
        ('"g", tolerance="5%"', "*@pytest.mark.prompt(tolerance='5%') must be a pass-rate drop*"),
        ('"g", sensitivities=5', "*@pytest.mark.prompt(sensitivities=5) must be a list of strings*"),
        (
            '"g", sensitivities="JSON"',
            "*@pytest.mark.prompt(sensitivities='JSON') must be a list of strings*",
        ),
        ('"g", purpse="typo"', "*@pytest.mark.prompt got unknown argument(s) ?'purpse'?; use*"),
        ("purpose='no name'", "*@pytest.mark.prompt needs the prompt's name first*"),
    ],
)
def test_a_bad_prompt_marker_fails_its_test_by_name_and_the_run_still_reports(
    pytester: pytest.Pytester, arguments: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.prompt({arguments})
        def test_bad(model):
            pass

        def test_good(model):
            pass
        """
    )
    result = pytester.runpytest("--models=a,b", "--migration-json=run.json")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines([message, "*migration gate (strict): FAILED*"])
    assert (pytester.path / "run.json").is_file()


def test_two_tests_sharing_one_cassette_are_refused_at_collection(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmodelmigrate_models = a\nmodelmigrate_cassette_dir = ../recordings\n")
    for folder in ("unit", "e2e"):
        (pytester.path / "tests" / folder).mkdir(parents=True)
        (pytester.path / "tests" / folder / "test_chat.py").write_text("def test_hello(model): pass\n")
    result = pytester.runpytest("tests", "--import-mode=importlib")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: tests/*/test_chat.py::test_hello?a? and tests/*/test_chat.py::test_hello?a? would share*"]
    )
    # the default folder (inside each test directory) keeps them apart
    pytester.makeini("[pytest]\nmodelmigrate_models = a\n")
    pytester.runpytest("tests", "--import-mode=importlib").assert_outcomes(passed=2)
