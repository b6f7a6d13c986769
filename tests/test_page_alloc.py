from simulator.mm.page_alloc import (
    Node,
    alloc_margin,
    calculate_min_free_kbytes,
    setup_per_zone_wmarks,
    take_pages,
    zone_watermark_ok,
)


class TestCalculateMinFreeKbytes:
    def test_sqrt_of_sixteen_times_lowmem(self):
        """4 GiB of lowmem: sqrt(16 x 4194304 KiB) = 8192 KiB."""
        assert calculate_min_free_kbytes(4 << 20) == 8192

    def test_clamped(self):
        """Between 128 KiB and 256 MiB."""
        assert calculate_min_free_kbytes(16) == 128
        assert calculate_min_free_kbytes(1 << 40) == 262144


class TestSetupPerZoneWmarks:
    def test_min_shared_by_managed_size_and_gaps(self):
        """min splits by managed pages; low/high add max(min/4, managed x wsf/10000) each."""
        (m0, l0, h0), (m1, l1, h1) = setup_per_zone_wmarks([300_000, 100_000], 8192, 10, 4)
        assert (m0, m1) == (1536, 512)
        assert l0 - m0 == max(1536 // 4, 300) == 384 and h0 - l0 == 384
        assert l1 - m1 == max(512 // 4, 100) == 128

    def test_scale_factor_wins_on_big_zones(self):
        """A large watermark_scale_factor widens the gaps beyond min/4."""
        ((wmin, low, high),) = setup_per_zone_wmarks([1_000_000], 4096, 100, 4)
        assert low - wmin == 10_000 and high - low == 10_000


class TestAllocator:
    def nodes(self):
        a = Node(nid=0, present=1000, managed=1000, watermark=(100, 150, 200), free=180, distance=[10, 20])
        b = Node(nid=1, present=1000, managed=1000, watermark=(100, 150, 200), free=400, distance=[20, 10])
        return [a, b]

    def test_watermark_ok_means_free_stays_above(self):
        """An order-0 page needs free > mark."""
        n = self.nodes()[0]
        assert zone_watermark_ok(n, 179) and not zone_watermark_ok(n, 180)

    def test_fast_path_fills_to_low_then_slow_path_to_min(self):
        """First every node down to low, then down to min, in zonelist order."""
        a, b = self.nodes()
        parts = take_pages([a, b], 30 + 250 + 10)
        assert parts == [(0, 30), (1, 250), (0, 10)]
        assert a.free == 140 and b.free == 150

    def test_margin_is_free_above_min(self):
        """What the allocator can give before __alloc_pages_may_oom: free - min per node."""
        a, b = self.nodes()
        assert alloc_margin([a, b]) == 80 + 300
        assert alloc_margin([a, b], oom_victim=True) == 130 + 350
