from simulator.mm.overcommit import (
    OVERCOMMIT_ALWAYS,
    OVERCOMMIT_GUESS,
    OVERCOMMIT_NEVER,
    Overcommit,
    commit_margin,
    guess_free_pages_2014,
    vm_commit_limit,
    vm_enough_memory,
)


def check(oc, pages, total_vm=0, admin=False, guess=None):
    return vm_enough_memory(oc, pages, commit_limit=vm_commit_limit(oc, 1000, 200, 4),
                            totalram=1000, total_swap=200, total_vm=total_vm, cap_sys_admin=admin,
                            guess_free_2014=guess)


class TestVmCommitLimit:
    def test_ratio_of_ram_plus_swap(self):
        """CommitLimit = RAM x overcommit_ratio / 100 + swap."""
        assert vm_commit_limit(Overcommit(ratio=50), 1000, 200, 4) == 700

    def test_kbytes_overrides_ratio(self):
        """overcommit_kbytes, when set, replaces the ratio."""
        assert vm_commit_limit(Overcommit(ratio=50, kbytes=400), 1000, 200, 4) == 300


class TestVmEnoughMemory:
    def test_always_never_refuses(self):
        """Mode 1 admits anything and accounts it."""
        oc = Overcommit(mode=OVERCOMMIT_ALWAYS)
        assert check(oc, 10**9) and oc.committed_as == 10**9

    def test_guess_refuses_only_more_than_ram_plus_swap(self):
        """Mode 0 (v6.18): one request above RAM + swap is refused; a page never is."""
        oc = Overcommit(mode=OVERCOMMIT_GUESS, committed_as=10**9)
        assert check(oc, 1)
        assert not check(oc, 1201)
        assert oc.committed_as == 10**9 + 1

    def test_never_counts_reserves(self):
        """Mode 2: admitted iff Committed_AS (request included) < limit - admin - user reserve."""
        oc = Overcommit(mode=OVERCOMMIT_NEVER, admin_reserve_pages=10, user_reserve_pages=50,
                        committed_as=600)
        # allowed = 700 - 10 - min(320 // 32, 50) = 680
        assert check(oc, 79, total_vm=320)
        assert not check(oc, 1, total_vm=320)
        assert oc.committed_as == 679
        assert check(oc, 1, total_vm=320, admin=True)

    def test_margin_matches_one_page_calls(self):
        """commit_margin is how many one-page calls succeed in a row."""
        oc = Overcommit(mode=OVERCOMMIT_NEVER, admin_reserve_pages=10, user_reserve_pages=50,
                        committed_as=600)
        n = commit_margin(oc, commit_limit=700, total_vm=0, cap_sys_admin=False)
        assert all(check(oc, 1) for _ in range(n))
        assert not check(oc, 1)


class TestGuess2014:
    def test_free_estimate(self):
        """[2014] free + file - shmem + swap + slab - totalreserve - admin reserve."""
        est = guess_free_pages_2014(free=100, file_pages=80, shmem=50, free_swap=0,
                                    slab_reclaimable=5, totalreserve=20, admin_reserve=10,
                                    cap_sys_admin=False)
        assert est == 100 + 80 - 50 + 5 - 20 - 10

    def test_can_refuse_a_single_page(self):
        """[2014] mode 0 refused one page when the estimate was not above it: SIGBUS on a hole."""
        oc = Overcommit(mode=OVERCOMMIT_GUESS)
        assert not check(oc, 1, guess=1)
        assert check(oc, 1, guess=2)
