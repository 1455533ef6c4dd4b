"""Malformed input to the CLI is one `error:` line on stderr, nothing on stdout and never a traceback; exit 2 when a
value is not of its kind at all (not a number, a time, a token), 1 when a well-formed value is refused.

No broker: every command gets an address nothing listens on, so a command that got as far as producing (or asking
the cluster) would fail differently, and later. The pure parsers behind the messages are checked directly too.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from orderstream.cli.main import app
from orderstream.domain.money import to_minor
from orderstream.domain.validation import MAX_VERSION, ValidationError, check_version, parse_whole_number
from orderstream.kafka.consistency import ConsistencyToken, TokenError

runner = CliRunner()
# an address nothing listens on: reaching Kafka at all would hang or fail differently
BASE = ["--bootstrap-servers", "127.0.0.1:1", "--topic-prefix", "unit."]
PLACE = ["place", "--customer", "c-1"]
MANY_NINES = "9" * 5000  # int() refuses strings of more than 4300 digits
# the messages of a value that is not of its parameter's kind: a usage error, exit 2 (every other refusal exits 1)
NOT_OF_ITS_KIND = (
    "not a whole number",
    "is not a number written like",
    "is not <topic>",
    "token '' is not",
    "ISO 8601",
)


def expected_exit(fragment: str) -> int:
    return 2 if any(kind in fragment for kind in NOT_OF_ITS_KIND) else 1


def one_error_line(args: list[str], tmp_path=None, code: int = 1) -> str:
    """Run the CLI; assert the contract and return the error line. Fast: nothing reached for Kafka."""
    base = [*BASE, "--data-dir", str(tmp_path)] if tmp_path is not None else BASE
    started = time.monotonic()
    result = runner.invoke(app, [*base, *args])
    elapsed = time.monotonic() - started
    assert isinstance(result.exception, SystemExit), result.exception  # typer.Exit, not an exception escaping
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert elapsed < 8, f"{args} took {elapsed:.1f}s: it went looking for a broker"
    return lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        # quantities: ASCII digits only (isdigit() took '²' and int() took '٣'; '--3' passed a lstrip('-'))
        ([*PLACE, "--item", "SKU-1:--3:1.00"], "quantity of SKU-1 is not a whole number: '--3'"),
        ([*PLACE, "--item", "SKU-1:²:1.00"], "quantity of SKU-1 is not a whole number: '²'"),
        ([*PLACE, "--item", "SKU-1:٣:1.00"], "quantity of SKU-1 is not a whole number: '٣'"),
        ([*PLACE, "--item", "SKU-1:1_000:1.00"], "not a whole number"),
        ([*PLACE, "--item", "SKU-1:-3:1.00"], "quantity of SKU-1 must be greater than 0, got -3"),
        ([*PLACE, "--item", f"SKU-1:{MANY_NINES}:1.00"], "quantity of SKU-1 is far too large"),
        (["stock", "add", "SKU-1", "--5"], "quantity of SKU-1 is not a whole number: '--5'"),
        (["stock", "add", "SKU-1", "²"], "quantity of SKU-1 is not a whole number: '²'"),
        (["stock", "add", "SKU-1", "٣"], "quantity of SKU-1 is not a whole number: '٣'"),
        (["stock", "add", "SKU-1", ""], "quantity of SKU-1 is not a whole number: ''"),
        (["stock", "add", "SKU-1", "-5"], "must be greater than 0, got -5"),
        # prices: plain decimals only, every message in the units typed
        ([*PLACE, "--item", "SKU-1:1:1e999999"], "price of SKU-1 '1e999999' is not a number written like 12.50"),
        ([*PLACE, "--item", "SKU-1:1:Infinity"], "is not a number written like 12.50"),
        ([*PLACE, "--item", "SKU-1:1:NaN"], "is not a number written like 12.50"),
        ([*PLACE, "--item", "SKU-1:1:1,000.00"], "is not a number written like 12.50"),
        ([*PLACE, "--item", "SKU-1:1:\u0661\u0662.\u0665\u0660"], "is not a number written like 12.50"),
        ([*PLACE, "--item", "SKU-1:1:-1"], "price of SKU-1 must be 0 or more, got -1 EUR"),
        ([*PLACE, "--item", "SKU-1:1:99999999999"], "price of SKU-1 is 99999999999 EUR; the limit is 1000000.00 EUR"),
        ([*PLACE, "--item", "SKU-1:1:1000000.01"], "the limit is 1000000.00 EUR"),
        ([*PLACE, "--item", f"SKU-1:1:{MANY_NINES}"], "the limit is 1000000.00 EUR"),
        ([*PLACE, "--item", "SKU-1:1:100000001", "--currency", "JPY"], "the limit is 100000000 JPY"),
        ([*PLACE, "--item", "SKU-1:1:1", "--order-id", ""], "order id must not be empty"),
        # numbers that reach the Avro encoder are bounded before anything is built
        (["cancel", "o-x", "--expected-version", "99999999999999999999"], f"no version is above {MAX_VERSION}"),
        (["cancel", "o-x", "--expected-version", str(MAX_VERSION + 1)], "is too large"),
        # empty values are refused, not replaced
        (["ship", "o-1", "--tracking", ""], "tracking number must not be empty"),
        (["status", "--sample", "-1"], "--sample must be a number of seconds greater than 0"),
        (["status", "--sample", "0"], "--sample must be a number of seconds greater than 0"),
        (["status", "--sample", "nan"], "--sample must be a number of seconds greater than 0"),
        # topic settings go through the Settings model: 0 is refused, not dropped; -3 never reaches the AdminClient
        (["topics", "init", "--partitions", "0"], "--partitions 0 is not allowed: it should be greater than"),
        (["topics", "init", "--partitions", "-3"], "--partitions -3 is not allowed"),
        (["topics", "init", "--partitions", "5000"], "it should be less than or equal to 1000"),
        (["topics", "init", "--replication-factor", "0"], "--replication-factor 0 is not allowed"),
    ],
)
def test_bad_input_is_one_line_before_kafka(args, fragment):
    assert fragment in one_error_line(args, code=expected_exit(fragment))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["query", "order", "X", "--after", "orders.events:²:0"], "is not <topic>:<partition>:<offset> with digits"),
        (["query", "stock", "--after", "inventory.events:0:¹"], "is not <topic>:<partition>:<offset> with digits"),
        (["query", "stock", "--after", "inventory.events:0:--1"], "is not <topic>:<partition>:<offset>"),
        (["query", "stock", "--after", f"inventory.events:0:{MANY_NINES}"], "is not <topic>:<partition>:<offset>"),
        (["query", "stock", "--after", ""], "token '' is not"),
        (["query", "order", "X", "--after", "orders.events:0:1", "--timeout", "inf"], "--timeout must be a finite"),
        (["query", "order", "X", "--as-of", ""], "--as-of '' is not an ISO 8601 time"),
        (["query", "orders", "--since", "yesterday"], "--since 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_bad_query_input_is_one_line(args, fragment, tmp_path):
    assert fragment in one_error_line(args, tmp_path, code=expected_exit(fragment))


def test_a_lower_case_z_is_utc(tmp_path):
    """--as-of ...z gets past the time parser: what fails next is the view that does not exist in tmp_path."""
    line = one_error_line(["query", "order", "X", "--as-of", "2026-11-27T00:03:27.25z"], tmp_path)
    assert "no database yet" in line
    from orderstream.cli.query import _parse_time

    assert _parse_time("2026-11-27T00:03:27.25z") == _parse_time("2026-11-27T00:03:27.25Z")
    assert _parse_time("2026-11-27T00:03:27.25z").utcoffset().total_seconds() == 0


def test_a_bad_toml_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('topic_prefix = "abc\n')
    line = one_error_line(["-c", str(bad), "status"])
    assert str(bad) in line and "not valid TOML" in line and "line 1, column" in line

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'topic_prefix = "\xff\xfe"\n')
    assert "not valid UTF-8" in one_error_line(["-c", str(binary), "status"])


def test_schemas_check_of_a_folder_without_schemas_fails(tmp_path):
    (tmp_path / "notes.txt").write_text("not a schema")
    line = one_error_line(["schemas", "check", "--dir", str(tmp_path)])
    assert f"no schemas in {tmp_path}" in line and "<group>/<Type>.v<N>.avsc" in line


def test_schemas_check_reports_a_folder_it_cannot_read(tmp_path, monkeypatch):
    """Running as root, chmod cannot make a folder unreadable: the OSError discover() would raise is simulated."""
    from orderstream.schemas import sources
    from orderstream.schemas.compatibility import check

    def unreadable(root):
        raise PermissionError(13, "Permission denied", str(tmp_path / "private"))

    monkeypatch.setattr(sources, "discover", unreadable)
    report = check(tmp_path)
    assert not report.ok
    assert [str(p) for p in report.problems] == [f"{tmp_path}/private: cannot be read (Permission denied)"]


# --- the pure parsers ---------------------------------------------------------------------------------------------


def test_whole_numbers_are_ascii_digits_with_an_optional_sign():
    assert parse_whole_number("quantity", " 42 ") == 42
    assert parse_whole_number("quantity", "+7") == 7 and parse_whole_number("quantity", "-7") == -7
    assert parse_whole_number("quantity", "007") == 7
    for text in ("²", "٣", "--3", "+-3", "1_000", "1.0", "", " ", "3a", "0x10", "١٢"):
        with pytest.raises(ValidationError, match="is not a whole number"):
            parse_whole_number("quantity", text)
    with pytest.raises(ValidationError, match="far too large"):
        parse_whole_number("quantity", MANY_NINES)


def test_prices_are_plain_decimals_in_major_units():
    assert to_minor("19.99", "EUR") == 1999
    assert to_minor("0012.50", "EUR") == 1250
    assert to_minor("1.", "EUR") == 100 and to_minor(".5", "EUR") == 50
    assert to_minor("12.000", "EUR") == 1200  # trailing zeros are not decimals the currency lacks
    assert to_minor("-0", "EUR") == 0
    assert to_minor("1200", "JPY") == 1200 and to_minor("1.234", "KWD") == 1234
    assert to_minor("1000000", "EUR", limit_minor=100_000_000) == 100_000_000
    for text in ("1e2", "1E-2", "Infinity", "-inf", "nan", "+1", "1_000", "1,50", "1.2.3", ".", "-", "", "٣"):
        with pytest.raises(ValidationError, match=r"not a number written like 12\.50"):
            to_minor(text, "EUR")
    with pytest.raises(ValidationError, match=r"must be 0 or more, got -0.01 EUR"):
        to_minor("-0.01", "EUR")
    with pytest.raises(ValidationError, match=r"has more than 2 decimals"):
        to_minor("0.001", "EUR")
    with pytest.raises(ValidationError, match=r"is 1000.001 KWD; the limit is 1000.000 KWD"):
        to_minor("1000.001", "KWD", limit_minor=1_000_000)
    with pytest.raises(ValidationError, match="far too large"):
        to_minor("1" + "0" * 30, "EUR")


def test_expected_versions_fit_an_avro_long():
    assert check_version("expected version", 0) == 0 and check_version("expected version", MAX_VERSION) == MAX_VERSION
    with pytest.raises(ValidationError, match="0 or more"):
        check_version("expected version", -1)
    with pytest.raises(ValidationError, match="too large"):
        check_version("expected version", MAX_VERSION + 1)


def test_tokens_are_ascii_digits_and_know_when_they_cannot_exist():
    assert ConsistencyToken.parse(" orders.events:3:1041 ") == ConsistencyToken("orders.events", 3, 1041)
    for text in (
        "orders.events:²:0",
        "orders.events:0:¹",
        "orders.events:٣:0",
        "orders.events:-1:0",
        ":0:0",
        "orders.events:0",
        "orders.events:0:" + "9" * 20,
        "",
    ):
        with pytest.raises(TokenError):
            ConsistencyToken.parse(text)
    token = ConsistencyToken("orders.events", 5, 10)
    assert token.impossibility(partitions=6, end_offset=11) is None
    assert token.impossibility(partitions=6, end_offset=None) is None  # end unknown: cannot say
    assert "has 6 partition(s), numbered 0 to 5" in ConsistencyToken("orders.events", 99, 0).impossibility(6, None)
    assert "ends before offset 10 (its last event is at offset 9)" in token.impossibility(6, 10)
    assert "(it holds no events)" in token.impossibility(6, 0)


def test_topic_settings_are_validated_not_copied():
    from orderstream.config import ConfigError, load_settings, with_overrides

    settings = load_settings(bootstrap_servers="127.0.0.1:1", sasl_password="secret")
    changed = with_overrides(settings, partitions=3, replication_factor=None)
    assert changed.partitions == 3 and changed.replication_factor == settings.replication_factor
    assert changed.sasl_password.get_secret_value() == "secret"
    assert with_overrides(settings) is settings
    with pytest.raises(ConfigError) as caught:
        with_overrides(settings, partitions=0)
    assert caught.value.setting == "partitions" and "greater than or equal to 1" in caught.value.reason


def test_status_says_when_no_topic_exists():
    from orderstream.config import load_settings
    from orderstream.ops.status import NoTopics, _require_topics

    settings = load_settings(bootstrap_servers="127.0.0.1:1", topic_prefix="nosuch.")
    with pytest.raises(NoTopics, match=r"no orderstream topics with prefix 'nosuch\.' exist at 127\.0\.0\.1:1.*init"):
        _require_topics(settings, {"orders.events": object()}, ["orders.events"])
    _require_topics(settings, {"nosuch.orders.events": object()}, ["orders.events", "orders.commands"])


def test_the_replication_factor_is_read_from_the_metadata():
    from orderstream.kafka.topics import _replication_factor

    def topic(*replica_counts):
        partitions = {i: SimpleNamespace(replicas=list(range(n))) for i, n in enumerate(replica_counts)}
        return SimpleNamespace(partitions=partitions)

    assert _replication_factor(topic(1, 1, 1)) == 1
    assert _replication_factor(topic(3, 3, 2)) == 2
    assert _replication_factor(topic()) is None
