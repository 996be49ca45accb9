/*
 * mixed accelerator: code written by KVM vCPUs, executed by TCG vCPUs
 *
 * TCG keeps its translations of guest code (TBs) valid by trapping stores:
 * a clean DIRTY_MEMORY_CODE bit means "this page has TBs", and TCG stores to
 * it take the slow path that invalidates them. A KVM vCPU's stores reach
 * guest RAM without passing through QEMU, so they invalidate nothing.
 * Instead, KVM logs them:
 *
 *  - KVM logs dirty pages on every RAM slot (TCG puts DIRTY_MEMORY_CODE in
 *    every RAM region's log mask) with manual protect and INITIALLY_SET:
 *    pages start dirty and writable, and a write is logged only after
 *    KVM_CLEAR_DIRTY_LOG write-protected the page again.
 *
 *  - Before TCG reads a page's code to translate it, if the page has no TBs
 *    yet, mixed_code_page_translating() clears the page's bit in KVM: any
 *    KVM write from then on, even one racing with the translation, is
 *    logged. (Clearing after the translation would lose a write that
 *    landed in between.)
 *
 *  - At a serialising point of a TCG vCPU, mixed_code_sync() reads KVM's
 *    log (KVM_GET_DIRTY_LOG; with manual protect it does not re-protect)
 *    and invalidates the TBs of every page that KVM logged and that has
 *    TBs. The page's bit stays set in KVM until the page is translated
 *    again, so a stale TB added by a translation that read before a write
 *    is invalidated at the next sync. Pages without TBs cost nothing: they
 *    are never write-protected, so KVM takes no faults for data.
 *
 * The serialising points are those where x86 obliges the executing
 * processor to see cross-modified code (SDM vol. 3, 9.1.3): interrupt and
 * exception delivery, IRET, CPUID, MOV to CR, WRMSR (patch 0009), and every
 * move from KVM to TCG (mixed-x86.c). A sync is skipped when no vCPU can have
 * run on KVM since the last one.
 *
 * Sharing KVM's dirty log with migration. QEMU's migration reads the same
 * log (KVM_GET_DIRTY_LOG, into its own bitmaps) and clears it
 * (KVM_CLEAR_DIRTY_LOG) before it sends a page. With manual protect a read
 * takes nothing away from the other reader; a clear does, so each side's
 * clear spares what the other has not consumed:
 *
 *  - migration's clear leaves the bits of pages that have TBs
 *    (mixed_code_log_clearing): a KVM write to such a page must still be
 *    seen by mixed's next sync. Migration then finds the page dirty again
 *    at its next pass and sends it again, which is merely conservative.
 *  - mixed's clear of a page about to be translated first marks the page
 *    dirty for migration while migration tracks dirty pages: a KVM write
 *    that migration had not read yet is then sent all the same.
 *  - pages KVM logged never reach DIRTY_MEMORY_CODE (patch 0009), which here
 *    means "no TBs", and which only mixed's sync interprets.
 * Both clears run under KVM's slots lock, and mixed_code_page_translating
 * protects the page (its CODE bit clear) before it takes the lock, so
 * migration's clear never takes a bit away from a page being translated.
 *
 * On VT-x hosts with PML, KVM buffers dirty GPAs per vCPU; KVM_GET_DIRTY_LOG
 * kicks the running vCPUs first (kvm_arch_sync_dirty_log), so the log is
 * complete when the ioctl returns. On shadow-MMU hosts the log is written at
 * the write fault itself.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/rcu.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "exec/ram_addr.h"
#include "exec/exec-all.h"
#include "exec/cputlb.h"
#include "exec/tb-flush.h"
#include "system/kvm_int.h"
#include "mixed-internal.h"
#include "trace.h"

/*
 * vCPUs inside kvm_cpu_exec() now, and how many times one left it. A sync
 * can be skipped only if nobody is on KVM and nobody left KVM since the
 * last sync began: the leaver bumps the count before it stops counting
 * itself as a runner, so a reader that sees no runners sees the bump.
 */
static int mixed_kvm_runners;
static uint64_t mixed_kvm_leaves;
static uint64_t mixed_kvm_leaves_synced;

void mixed_code_kvm_entering(void)
{
    qatomic_inc(&mixed_kvm_runners);
}

void mixed_code_kvm_left(void)
{
    qatomic_inc(&mixed_kvm_leaves);
    qatomic_dec(&mixed_kvm_runners);
}

/* ------------------------------------------------------------------------
 * Watch a page: have KVM log writes to it from now on
 */

typedef struct MixedCodeWatch {
    ram_addr_t page;
    int ret;
} MixedCodeWatch;

static void mixed_code_watch_in_slot(KVMSlot *mem, void *opaque)
{
    MixedCodeWatch *w = opaque;
    uint64_t psize = qemu_real_host_page_size();
    uint64_t page, first, npages, bitmap;
    struct kvm_clear_dirty_log d;

    if (w->page < mem->ram_start_offset ||
        w->page - mem->ram_start_offset >= mem->memory_size) {
        return;
    }
    /* KVM_CLEAR_DIRTY_LOG works on 64-page aligned groups. */
    page = (w->page - mem->ram_start_offset) / psize;
    first = page & ~63ULL;
    npages = MIN(64, mem->memory_size / psize - first);
    bitmap = 1ULL << (page - first);
    d = (struct kvm_clear_dirty_log) {
        .slot = mem->slot | (mem->as_id << 16),
        .first_page = first,
        .num_pages = npages,
        .dirty_bitmap = &bitmap,
    };
    w->ret = kvm_vm_ioctl(kvm_state, KVM_CLEAR_DIRTY_LOG, &d);
}

void mixed_code_page_translating(ram_addr_t addr)
{
    MixedCodeWatch w = { .page = addr & TARGET_PAGE_MASK };

    if (!mixed_state()->code_sync ||
        !cpu_physical_memory_get_dirty_flag(w.page, DIRTY_MEMORY_CODE)) {
        return;     /* the page has TBs: its stores are already watched */
    }
    /*
     * TCG stores too. QEMU protects a page only once its first TB exists
     * (tb_page_add), so a store by another TCG vCPU between the translator's
     * read and that point goes through a TLB entry without TLB_NOTDIRTY and
     * leaves the new TB stale for good; plain MTTCG fails torture's xmc test
     * this way. Protected before the read, such a store takes the notdirty
     * path, which waits for the page lock the translator holds and then
     * invalidates the new TB.
     */
    tlb_protect_code(w.page);
    if (global_dirty_tracking) {
        /* the clear below may take a KVM write migration has not read */
        cpu_physical_memory_set_dirty_range(w.page, TARGET_PAGE_SIZE,
                                            1 << DIRTY_MEMORY_MIGRATION);
    }
    kvm_dirty_log_slots_foreach(mixed_code_watch_in_slot, &w);
    if (w.ret < 0) {
        error_report_once("mixed: KVM_CLEAR_DIRTY_LOG failed (%s): writes by "
                          "KVM vCPUs to translated code may go unnoticed",
                          strerror(-w.ret));
    }
}

/* 64 CODE dirty bits from RAM page @page on: a set bit means "no TBs". */
static uint64_t mixed_code_dirty_bits(unsigned long *const *blocks, uint64_t page)
{
    uint64_t bits = 0;
    int i;

    if (page % BITS_PER_LONG == 0) {
        return blocks[page / DIRTY_MEMORY_BLOCK_SIZE]
                     [(page % DIRTY_MEMORY_BLOCK_SIZE) / BITS_PER_LONG];
    }
    for (i = 0; i < 64; i++) {
        uint64_t p = page + i;

        if (test_bit(p % DIRTY_MEMORY_BLOCK_SIZE,
                     blocks[p / DIRTY_MEMORY_BLOCK_SIZE])) {
            bits |= 1ULL << i;
        }
    }
    return bits;
}

/*
 * QEMU is about to clear @bitmap's pages (@npages from RAM address @start) in
 * KVM's dirty log for migration: spare the pages with TBs, whose bits
 * mixed's sync still has to see (see the top of this file). KVM's slots
 * lock held.
 */
void mixed_code_log_clearing(ram_addr_t start, unsigned long *bitmap,
                             uint64_t npages)
{
    uint64_t first_page = start >> TARGET_PAGE_BITS, w;

    if (!mixed_state()->code_sync) {
        return;
    }
    WITH_RCU_READ_LOCK_GUARD() {
        unsigned long *const *blocks =
            qatomic_rcu_read(&ram_list.dirty_memory[DIRTY_MEMORY_CODE])->blocks;

        for (w = 0; w * 64 < npages; w++) {
            if (bitmap[w]) {
                bitmap[w] &= mixed_code_dirty_bits(blocks, first_page + w * 64);
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * TCG stores to code: invalidated again after they landed
 *
 * notdirty_write() invalidates a page's TBs and only then stores. Another
 * vCPU can translate the old bytes in between, and that TB outlives the
 * store: plain MTTCG fails torture's xmc test this way. The writer records
 * the page here before its store; the store precedes anything the writer
 * publishes afterwards, so every vCPU that serialises after seeing that
 * invalidates the page again, and translates the new bytes.
 */

#define MIXED_CODE_WRITES 1024
static struct {
    ram_addr_t page;
    uint64_t seq;           /* n + 1 once entry n is written */
} mixed_code_writes[MIXED_CODE_WRITES];
static uint64_t mixed_code_writes_count;

void mixed_code_written(ram_addr_t addr)
{
    uint64_t n;

    if (!mixed_state()->code_sync) {
        return;
    }
    n = qatomic_fetch_inc(&mixed_code_writes_count);
    qatomic_set(&mixed_code_writes[n % MIXED_CODE_WRITES].page, addr & TARGET_PAGE_MASK);
    qatomic_store_release(&mixed_code_writes[n % MIXED_CODE_WRITES].seq, n + 1);
}

/* Returns how many pages it invalidated (again). */
static uint64_t mixed_code_writes_resync(CPUState *cpu)
{
    AccelCPUState *mv = cpu->accel;
    uint64_t end = qatomic_read(&mixed_code_writes_count), n;

    if (end - mv->code_writes_seen > MIXED_CODE_WRITES / 2) {
        /* Too many to replay before the ring wraps: empty the code cache. */
        tb_flush(cpu);
        n = end - mv->code_writes_seen;
        mv->code_writes_seen = end;
        return n;
    }
    for (n = mv->code_writes_seen; n < end; n++) {
        uint64_t i = n % MIXED_CODE_WRITES;
        ram_addr_t page;

        if (qatomic_load_acquire(&mixed_code_writes[i].seq) != n + 1) {
            break;  /* still being recorded: its store has not landed */
        }
        page = qatomic_read(&mixed_code_writes[i].page);
        tb_invalidate_phys_range(page, page + TARGET_PAGE_SIZE - 1);
    }
    end = n;
    n = end - mv->code_writes_seen;
    mv->code_writes_seen = end;
    return n;
}

/* ------------------------------------------------------------------------
 * Sync: invalidate the TBs of pages KVM vCPUs wrote
 */

typedef struct MixedCodeLogSlot {
    ram_addr_t ram_start;
    uint64_t npages;
    size_t word;            /* first word of its bitmap in the buffer */
} MixedCodeLogSlot;

typedef struct MixedCodeLog {
    AccelCPUState *mv;      /* owns the buffer, reused from sync to sync */
    MixedCodeLogSlot slots[16];
    int nslots;
    int ret;
} MixedCodeLog;

static void mixed_code_log_read_slot(KVMSlot *mem, void *opaque)
{
    MixedCodeLog *log = opaque;
    AccelCPUState *mv = log->mv;
    uint64_t npages = mem->memory_size / qemu_real_host_page_size();
    size_t words = DIV_ROUND_UP(npages, 64), word = 0;
    struct kvm_dirty_log d = { .slot = mem->slot | (mem->as_id << 16) };
    int i, ret;

    if (log->nslots == ARRAY_SIZE(log->slots)) {
        log->ret = -E2BIG;
        return;
    }
    for (i = 0; i < log->nslots; i++) {
        word += DIV_ROUND_UP(log->slots[i].npages, 64);
    }
    if (word + words > mv->code_log_words) {
        mv->code_log_words = word + words;
        mv->code_log = g_renew(uint64_t, mv->code_log, mv->code_log_words);
    }
    d.dirty_bitmap = mv->code_log + word;
    ret = kvm_vm_ioctl(kvm_state, KVM_GET_DIRTY_LOG, &d);
    if (ret < 0) {
        log->ret = ret;
        return;
    }
    log->slots[log->nslots++] = (MixedCodeLogSlot) {
        .ram_start = mem->ram_start_offset, .npages = npages, .word = word,
    };
}

/*
 * Pages of @slot that KVM logged and that have TBs, from bitmap word *@w on;
 * stops when @pages is full, with *@w where to go on.
 */
static uint64_t mixed_code_log_stale_pages(const MixedCodeLogSlot *slot,
                                     const uint64_t *log, uint64_t *w,
                                     ram_addr_t *pages, uint64_t max)
{
    uint64_t n = 0, first_page = slot->ram_start >> TARGET_PAGE_BITS;

    WITH_RCU_READ_LOCK_GUARD() {
        unsigned long *const *blocks =
            qatomic_rcu_read(&ram_list.dirty_memory[DIRTY_MEMORY_CODE])->blocks;

        /* a word is consumed whole, so stop while one more surely fits */
        for (; *w * 64 < slot->npages && n + 64 <= max; ++*w) {
            uint64_t stale = log[*w];

            if (!stale) {
                continue;
            }
            if (slot->npages - *w * 64 < 64) {
                stale &= MAKE_64BIT_MASK(0, slot->npages - *w * 64);
            }
            stale &= ~mixed_code_dirty_bits(blocks, first_page + *w * 64);
            while (stale) {
                int bit = ctz64(stale);

                stale &= stale - 1;
                pages[n++] = slot->ram_start +
                             ((*w * 64 + bit) << TARGET_PAGE_BITS);
            }
        }
    }
    return n;
}

static void mixed_code_sync_read_logs(CPUState *cpu)
{
    AccelCPUState *mv = cpu->accel;
    MixedCodeLog log = { .mv = mv };
    uint64_t leaves, invalidated = 0;
    ram_addr_t stale[256];
    int64_t t0, ns;
    bool kvm_running;
    int i;

    mv->code_synced_insns = cpu->neg.mixed_tcg_insns;
    if (qatomic_read(&mixed_code_writes_count) != mv->code_writes_seen) {
        mv->code_pages_invalidated += mixed_code_writes_resync(cpu);
    }
    kvm_running = qatomic_load_acquire(&mixed_kvm_runners) != 0;
    leaves = qatomic_read(&mixed_kvm_leaves);
    if (!kvm_running && leaves == qatomic_read(&mixed_kvm_leaves_synced)) {
        return;     /* no KVM vCPU ran since the last sync */
    }

    t0 = mixed_now_ns();
    /*
     * The bitmaps are read under the slots lock, which must not be held
     * while TBs are invalidated: translation takes page locks first, then
     * (mixed_code_page_translating) the slots lock.
     */
    kvm_dirty_log_slots_foreach(mixed_code_log_read_slot, &log);
    if (log.ret < 0) {
        error_report_once("mixed: reading KVM's dirty log failed (%s): TCG "
                          "may execute stale code", strerror(-log.ret));
    }
    for (i = 0; i < log.nslots; i++) {
        const MixedCodeLogSlot *slot = &log.slots[i];
        uint64_t w = 0, n, j;

        while (w * 64 < slot->npages) {
            n = mixed_code_log_stale_pages(slot, mv->code_log + slot->word, &w,
                                     stale, ARRAY_SIZE(stale));
            for (j = 0; j < n; j++) {
                tb_invalidate_phys_range(stale[j],
                                         stale[j] + TARGET_PAGE_SIZE - 1);
            }
            invalidated += n;
        }
    }
    qatomic_set(&mixed_kvm_leaves_synced, leaves);

    mv->code_syncs++;
    mv->code_pages_invalidated += invalidated;
    ns = mixed_now_ns() - t0;
    mv->code_sync_ns += ns;
    trace_mixed_code_sync(cpu->cpu_index, log.nslots, invalidated, ns);
}

/*
 * A serialising point. A vCPU that has not run a guest instruction since its
 * last sync cannot have seen anything newer than that sync did: on PVM every
 * kernel entry is a move into TCG followed at once by the event's delivery,
 * and only the first of the two needs to read the log.
 */
void mixed_code_sync(CPUState *cpu)
{
    if (mixed_state()->code_sync &&
        cpu->neg.mixed_tcg_insns != cpu->accel->code_synced_insns) {
        mixed_code_sync_read_logs(cpu);
    }
}

/* A move into TCG: the vCPU ran on KVM, which the TCG count does not see. */
void mixed_code_sync_moved(CPUState *cpu)
{
    if (mixed_state()->code_sync) {
        mixed_code_sync_read_logs(cpu);
    }
}

/* At start-up: the log this design relies on. */
bool mixed_code_check_host(MixedState *s, Error **errp)
{
    if (s->code_sync && !s->kvm.manual_dirty_log_protect) {
        error_setg(errp, "mixed: KVM must offer KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 "
                   "(Linux 5.8 or later) without a dirty ring "
                   "(dirty-ring-size=0): mixed reads KVM's dirty log to keep "
                   "TCG's translated code coherent with KVM vCPUs' writes");
        return false;
    }
    return true;
}
