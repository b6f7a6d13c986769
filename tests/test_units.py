import pytest

from simulator.scenario import Scenario
from simulator.units import (
    DurationText,
    SizeText,
    UnitError,
    parse_bytes,
    parse_pages,
    parse_seconds,
    read_duration,
    read_size,
)


class TestSizes:
    def test_binary_units(self):
        """KiB/MiB/GiB are powers of 1024."""
        assert parse_bytes("4KiB") == 4096
        assert parse_bytes("64MiB") == 64 << 20
        assert parse_bytes("1.5GiB") == 3 << 29

    def test_percent_of_a_whole(self):
        """25% is a quarter of what it is taken of."""
        assert parse_bytes("25%", whole=400) == 100

    def test_pages_round_up(self):
        """A size that is not a whole number of pages needs one more page."""
        assert parse_pages("4097", 4096) == 2

    @pytest.mark.parametrize("bad", ["-4KiB", "64MB!", "fast", 1.5, True, "10%"])
    def test_bad_sizes_are_refused(self, bad):
        """A negative size, a bad unit, a bare float, or a percentage of nothing is an error."""
        with pytest.raises(UnitError):
            parse_bytes(bad)


class TestDurations:
    def test_units(self):
        """s, ms and us."""
        assert parse_seconds("60s") == 60
        assert parse_seconds("250ms") == 0.25
        assert parse_seconds("10us") == pytest.approx(1e-5)

    def test_bad_unit(self):
        """A size is not a duration."""
        with pytest.raises(UnitError):
            parse_seconds("4KiB")


class TestReadOnceAtLoad:
    @pytest.mark.parametrize("text", ["4KiB", "64MiB", "1.5GiB", "4096", " 3 m "])
    def test_a_size_read_at_load_gives_the_same_bytes(self, text):
        """Ops get the bytes read at load, the same as parsing the text when they run."""
        read = read_size(text)
        assert isinstance(read, SizeText) and read == text
        assert parse_bytes(read) == parse_bytes(text)

    def test_a_percentage_is_taken_of_the_whole_when_the_op_runs(self):
        """25% is kept as a fraction; the whole is known only later."""
        read = read_size("25%")
        assert parse_bytes(read, whole=400) == 100
        with pytest.raises(UnitError):
            parse_bytes(read)

    def test_a_duration_read_at_load_gives_the_same_seconds(self):
        """250ms read once is 0.25 s, and it still reads as the text it was."""
        read = read_duration("250ms")
        assert isinstance(read, DurationText) and read == "250ms"
        assert parse_seconds(read) == 0.25

    def test_scenario_dumps_give_back_the_text(self):
        """A scenario's sizes dump as plain strings, as written."""
        sc = Scenario.model_validate({"name": "x", "tasks": [
            {"name": "t", "ops": [{"alloc_anon": {"size": "1MiB"}}, {"sleep": "5ms"}]}]})
        size = sc.tasks[0].ops[0].alloc_anon.size
        assert isinstance(size, SizeText) and parse_bytes(size) == 1 << 20
        dumped = sc.model_dump()["tasks"][0]["ops"]
        assert type(dumped[0]["alloc_anon"]["size"]) is str
