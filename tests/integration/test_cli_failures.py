"""The CLI's promise when things go wrong: one line on stderr (`error: ...`), a non-zero exit code, no traceback,
and no long wait. An unreachable broker exits 1 within seconds; a usage error exits 2; an error that escaped a
command is still one line (and its traceback only with --verbose).

The unreachable-broker commands run as real programs (`python -m orderstream.cli.main`), all at once: each is a
check for "no hang" with a generous bound, not a benchmark.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import typer
from typer.testing import CliRunner

from orderstream.cli.common import GlobalOptions
from orderstream.cli.main import RootGroup, app

UNREACHABLE = "127.0.0.1:1"
NO_HANG_S = 15.0
runner = CliRunner()

UNREACHABLE_COMMANDS = {
    "place": ["place", "--customer", "c-1", "--item", "BOOK-1:1:9.99"],
    "place --wait": ["place", "--customer", "c-1", "--item", "BOOK-1:1:9.99", "--wait", "--json"],
    "tail --no-follow": ["tail", "orders.events", "--no-follow"],
    "dlq list": ["dlq", "list"],
    "generate": ["generate", "--orders", "3"],
    "replay projection": ["replay", "projection", "order-view", "--from-beginning"],
    "replay topic": ["replay", "topic", "orders.events", "--to", "orders.events.copy"],
}


def run_cli(args: list[str], timeout_s: float = 60.0) -> tuple[subprocess.CompletedProcess, float]:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orderstream.cli.main", *args], capture_output=True, text=True, timeout=timeout_s
    )
    return result, time.monotonic() - began


@pytest.fixture(scope="module")
def unreachable_runs(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, float]]:
    """Every command of UNREACHABLE_COMMANDS against a port nothing listens on, run concurrently."""
    data_dir = tmp_path_factory.mktemp("unreachable")
    root = ["-b", UNREACHABLE, "--topic-prefix", "unreachable.", "--data-dir", str(data_dir)]
    with ThreadPoolExecutor(max_workers=len(UNREACHABLE_COMMANDS)) as pool:
        futures = {name: pool.submit(run_cli, [*root, *args]) for name, args in UNREACHABLE_COMMANDS.items()}
        return {name: future.result() for name, future in futures.items()}


def assert_one_error_line(result, *fragments: str) -> str:
    """result: a CompletedProcess or a CliRunner Result; its stderr is exactly one `error: ...` line."""
    stderr = result.stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("name", list(UNREACHABLE_COMMANDS))
def test_an_unreachable_broker_is_one_line_and_exit_1_within_seconds(unreachable_runs, name):
    result, seconds = unreachable_runs[name]
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result, "no broker answers at 127.0.0.1:1", "orderstream broker start")
    assert result.stdout == ""
    assert seconds < NO_HANG_S, f"{name} took {seconds:.1f}s"


@pytest.mark.parametrize(
    "args, fragment, command",
    [
        (["place", "--customer", "c-1"], "Missing option '--item'", "orderstream place"),
        (["generate", "--orders", "many"], "'--orders'", "orderstream generate"),
        (["cancel", "o-1", "--expected-version", "abc"], "'--expected-version'", "orderstream cancel"),
        (["query", "orders", "--limit", "ten"], "'--limit'", "orderstream query orders"),
        (["no-such-command"], "No such command", "orderstream"),
        (["--no-such-option"], "No such option", "orderstream"),
    ],
)
def test_a_usage_error_is_one_line_with_a_hint_and_exit_2(args, fragment, command):
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert_one_error_line(result, fragment, f"see `{command} --help`")
    assert result.stdout == ""


def test_the_program_itself_reports_a_usage_error_in_one_line():
    result, _ = run_cli(["place", "--customer", "c-1"])
    assert result.returncode == 2
    assert_one_error_line(result, "Missing option '--item'", "see `orderstream place --help`")


def test_help_still_works():
    assert runner.invoke(app, ["--help"]).exit_code == 0
    placed = runner.invoke(app, ["place", "--help"])
    assert placed.exit_code == 0 and "--customer" in placed.stdout and placed.stderr == ""


def escaping(error: BaseException) -> typer.Typer:
    """An app with the real root's error handling and one command that lets `error` escape."""
    test_app = typer.Typer(cls=RootGroup)

    @test_app.callback()
    def root(ctx: typer.Context, verbose: bool = typer.Option(False, "--verbose")) -> None:
        ctx.obj = GlobalOptions(overrides={"bootstrap_servers": "broker.example:9092"}, verbose=verbose)

    @test_app.command()
    def boom() -> None:
        raise error

    return test_app


def kafka_exception(code_name: str, text: str) -> Exception:
    from confluent_kafka import KafkaError, KafkaException

    return KafkaException(KafkaError(getattr(KafkaError, code_name), text))


def test_an_escaped_kafka_error_is_one_line_naming_the_broker_and_the_traceback_needs_verbose():
    error = kafka_exception("_TIMED_OUT", "Timed out waiting for operation to finish")
    quiet = runner.invoke(escaping(error), ["boom"])
    assert quiet.exit_code == 1
    assert_one_error_line(quiet, "broker.example:9092", "did not answer in time", "orderstream status")

    verbose = runner.invoke(escaping(error), ["--verbose", "boom"])
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.stderr and verbose.stderr.strip().splitlines()[-1].startswith("error: ")


def test_an_unexpected_error_is_one_line_that_says_it_is_a_bug():
    result = runner.invoke(escaping(KeyError("x")), ["boom"])
    assert result.exit_code == 1
    assert_one_error_line(result, "unexpected KeyError", "--verbose")


def test_ctrl_c_still_exits_130_without_a_line():
    result = runner.invoke(escaping(KeyboardInterrupt()), ["boom"])
    assert result.exit_code == 130
    assert "error:" not in result.stderr and "Traceback" not in result.stderr


# --- against a real broker -------------------------------------------------------------------------------------


def root_args(settings) -> list[str]:
    return [
        "-b",
        settings.effective_bootstrap,
        "--topic-prefix",
        settings.topic_prefix,
        "--data-dir",
        str(settings.data_dir),
    ]


def test_a_command_to_a_missing_topic_waits_once_not_twice(settings):
    """The broker answers but the topic does not exist: send() waits its 10 s, and closing no longer waits 10 more."""
    result, seconds = run_cli([*root_args(settings), "place", "--customer", "c-1", "--item", "BOOK-1:1:9.99"])
    assert result.returncode == 1
    assert_one_error_line(result, "did not acknowledge", "does not exist", "orderstream topics init")
    assert seconds < NO_HANG_S, f"took {seconds:.1f}s"


def test_generate_to_a_missing_topic_fails_at_once_without_a_bar(settings):
    result, seconds = run_cli([*root_args(settings), "generate", "--orders", "3"])
    assert result.returncode == 1
    assert_one_error_line(result, "does not exist", "orderstream topics init")
    assert seconds < NO_HANG_S, f"took {seconds:.1f}s"


def test_generate_reports_progress_by_time_counting_acknowledged_records_only(topics):
    """A small, rate-limited load (far under the old 1000-record step) still reports progress as it goes; what is
    reported adds up to the records acknowledged, and the total ends exact."""
    from orderstream.producers.generator import generate
    from orderstream.producers.load_plan import LoadProfile

    progress: list[int] = []
    totals: list[int] = []
    result = generate(
        topics,
        # ~1.8 s at 100 records/s: longer than the idempotent producer's first PID request can keep every
        # acknowledgement back (with 50 orders, 0.6 s, all of them sometimes came in one report at the end)
        LoadProfile(orders=150, seed=5, cancel_ratio=0.2),
        rate=100,
        on_progress=progress.append,
        on_total=totals.append,
    )
    assert result.failed == 0 and result.first_error is None
    assert sum(progress) == result.records == result.acknowledged
    assert len(progress) >= 2, f"progress came only at the end: {progress}"
    assert totals[0] == 180 and totals[-1] == result.records
