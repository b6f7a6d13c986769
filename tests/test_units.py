import pytest

from simulator.units import UnitError, parse_bytes, parse_pages, parse_seconds


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
