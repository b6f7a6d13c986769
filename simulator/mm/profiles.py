"""Kernel behaviour profiles: which version's rules run, and the what-if switches.

`6.18` is the default and the kernel the measured outcomes come from. `3.15` is the kernel of the
June 2014 sealing discussion; every rule docs/kernel-rules.md marks [2014] is switched here, so the same
scenario run under both shows what changed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KernelProfile:
    """The switches that differ between the modelled kernel versions.

    Attributes:
        name: the version string a scenario names.
        shmem_acct_before_alloc: [2014] `shmem_getpage_gfp` accounted (vm_enough_memory, tmpfs
            blocks) before allocating and charging; 6.18 `shmem_alloc_and_add_folio` allocates
            and charges first.
        overcommit_guess_heuristic: [2014] mode 0 estimated free memory per request and could
            refuse one page; 6.18 refuses only a request larger than RAM + swap.
        memcg_oom_user_fault_only: [2014] (3.12..4.18) the memcg OOM killer ran only for user
            faults and was deferred to the end of the fault (`mem_cgroup_oom_synchronize`);
            charges from syscalls and GUP failed with -ENOMEM. 6.18 kills in the charge path.
        pagefault_oom_global: [2014] `pagefault_out_of_memory` invoked the global OOM killer when
            no memcg OOM was pending; 6.18 only returns and lets the task refault.
        madv_populate: MADV_POPULATE_READ/WRITE exist (5.14+); otherwise madvise says EINVAL.
        madv_pageout: MADV_PAGEOUT exists (5.4+); otherwise madvise says EINVAL.
        kmem_charged: kernel memory is charged to the memcg: page tables (GFP_PGTABLE_USER,
            x86 since 2016, commit 3e79ec7ddc33), the kernel stack, and the page cache's
            xarray nodes (XA_FLAGS_ACCOUNT; radix tree nodes since Linux 4.6). 3.15 charged
            none of them: v1 kernel memory accounting was opt-in (memory.kmem.limit_in_bytes)
            and covered neither page tables nor radix tree nodes.
        pgtable_rcu_free: page tables are freed (and uncharged) after an RCU grace period
            (`tlb_remove_table` with CONFIG_MMU_GATHER_RCU_TABLE_FREE, which x86 always
            selects in 6.18); [2014] 3.15 x86 freed them at once.
        pt_reclaim: MADV_DONTNEED frees the PTE tables it empties (CONFIG_PT_RECLAIM, 6.14+:
            `zap_pte_range` with `reclaim_pt`); before, only munmap and exit freed page tables.
        memcg_high: memory.high throttles (cgroup v2's `mem_cgroup_handle_over_high`, 4.5+;
            the reclaim-then-sleep form since 5.4); 3.15 had no memory.high, so it is ignored.
        psi: pressure stall information is kept (4.20+); under 3.15 every total stays 0.
    """

    name: str
    shmem_acct_before_alloc: bool
    overcommit_guess_heuristic: bool
    memcg_oom_user_fault_only: bool
    pagefault_oom_global: bool
    madv_populate: bool
    madv_pageout: bool
    kmem_charged: bool
    pgtable_rcu_free: bool
    pt_reclaim: bool
    memcg_high: bool = True
    psi: bool = True


PROFILES: dict[str, KernelProfile] = {
    "6.18": KernelProfile(
        name="6.18",
        shmem_acct_before_alloc=False,
        overcommit_guess_heuristic=False,
        memcg_oom_user_fault_only=False,
        pagefault_oom_global=False,
        madv_populate=True,
        madv_pageout=True,
        kmem_charged=True,
        pgtable_rcu_free=True,
        pt_reclaim=True,
    ),
    "3.15": KernelProfile(
        name="3.15",
        shmem_acct_before_alloc=True,
        overcommit_guess_heuristic=True,
        memcg_oom_user_fault_only=True,
        pagefault_oom_global=True,
        madv_populate=False,
        madv_pageout=False,
        kmem_charged=False,
        pgtable_rcu_free=False,
        pt_reclaim=False,
        memcg_high=False,
        psi=False,
    ),
}


@dataclass(frozen=True)
class WhatIf:
    """Behaviour no kernel has, to measure proposals.

    Attributes:
        zero_page_sealed_holes: a read fault on a hole of a file sealed with F_SEAL_WRITE or
            F_SEAL_FUTURE_WRITE maps ZERO_PAGE instead of instantiating a page (docs/kernel-rules.md
            9.6, the mitigation proposed in 2014 and never merged): it costs page tables only. A
            later write fault (private COW) or instantiation (fallocate) replaces the zero PTE.
        charge_at_seal: F_ADD_SEALS with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE instantiates every
            hole of the file as `shmem_fallocate` would, charged to the sealing task; on failure
            the seal call fails (ENOMEM, ENOSPC) and adds no seal (mm/memfd_seal_charge.py).
    """

    zero_page_sealed_holes: bool = False
    charge_at_seal: bool = False
