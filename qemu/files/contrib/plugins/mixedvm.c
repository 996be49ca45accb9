/*
 * mixedvm: what TCG observed of each vCPU
 *
 * Under -accel mixed, a plugin sees only the code TCG runs: a vCPU on KVM
 * runs natively and produces no callbacks. This plugin counts, per vCPU, the
 * guest instructions and memory accesses TCG executed, and samples the
 * system calls the guest made through SYSCALL on TCG (the number in RAX).
 * QEMU's query-vcpu-accel reports each vCPU's time on TCG and on KVM and the
 * instructions TCG ran (tcg-insns); the two together tell a user how much of
 * each vCPU's execution was observed (docs/mixed.md, "Analysis").
 *
 *   -plugin contrib/plugins/libmixedvm.so[,sample=N][,window-ms=W][,out=FILE]
 *
 * sample=N reads the system-call number of one SYSCALL in N per vCPU
 * (default 1: every one). window-ms=W measures coverage by the plugin's own
 * clock: for each vCPU and each complete window of W ms since the plugin
 * started, the share of the window in which TCG ran the vCPU, to 1/100 of a
 * window ("observed"). A user of the sample policy checks its guarantee with
 * it (docs/scheduler.md). out=FILE writes one JSON object per vCPU at exit;
 * without it the same lines go to QEMU's log (stderr, or -D).
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_SYSCALL_NR 512
/*
 * window-ms: a window is cut into ticks, and a tick counts as observed when
 * TCG ran the vCPU in it. The clock is read once per LOOK_EVERY_TBS
 * translation blocks a vCPU executes (a conditional callback on an inline
 * counter), not on every one: at TCG's tens of millions of blocks a second
 * that is well under a tick, and costs little.
 */
#define TICKS_PER_WINDOW 100
#define LOOK_EVERY_TBS 64

typedef struct {
    uint64_t insns;
    uint64_t mem;
    uint64_t syscalls;
    uint64_t tbs_since_look;
} VcpuCounts;

typedef struct {
    int64_t last_tick;          /* the last tick TCG ran it in, or -1 */
    GArray *observed_ticks;     /* guint8 per window: ticks TCG ran it in */
} VcpuCoverage;

typedef struct {
    struct qemu_plugin_register *rax;
    GByteArray *buf;
    uint64_t sampled;
    uint64_t by_nr[MAX_SYSCALL_NR];   /* sampled calls per number */
    uint64_t other_nr;                /* sampled numbers out of range */
} VcpuSyscalls;

static struct qemu_plugin_scoreboard *counts;
static qemu_plugin_u64 insns, mem, syscalls, tbs_since_look;
static VcpuSyscalls *vcpu_syscalls;   /* indexed by vCPU, max_vcpus long */
static VcpuCoverage *vcpu_coverage;   /* the same, with window-ms */
static int64_t window_us, tick_us, start_us;
static int max_vcpus;
static uint64_t sample_every = 1;
static char *out_path;
static bool x86_64;

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu)
{
    g_autoptr(GArray) regs = qemu_plugin_get_registers();

    if (vcpu >= (unsigned)max_vcpus) {
        return;
    }
    for (guint i = 0; regs && i < regs->len; i++) {
        qemu_plugin_reg_descriptor *r =
            &g_array_index(regs, qemu_plugin_reg_descriptor, i);

        if (!strcmp(r->name, "rax")) {
            vcpu_syscalls[vcpu].rax = r->handle;
        }
    }
    vcpu_syscalls[vcpu].buf = g_byte_array_new();
    vcpu_coverage[vcpu].last_tick = -1;
    vcpu_coverage[vcpu].observed_ticks = g_array_new(false, true, sizeof(guint8));
}

/* On the vCPU's own thread, every LOOK_EVERY_TBS blocks it runs on TCG. */
static void on_look(unsigned int vcpu, void *udata)
{
    VcpuCoverage *c;
    int64_t tick;
    guint window;

    qemu_plugin_u64_set(tbs_since_look, vcpu, 0);
    if (vcpu >= (unsigned)max_vcpus) {
        return;
    }
    c = &vcpu_coverage[vcpu];
    tick = (g_get_monotonic_time() - start_us) / tick_us;
    if (tick == c->last_tick) {
        return;
    }
    c->last_tick = tick;
    window = tick / TICKS_PER_WINDOW;
    if (window >= c->observed_ticks->len) {
        g_array_set_size(c->observed_ticks, window + 1);
    }
    g_array_index(c->observed_ticks, guint8, window)++;
}

static void on_syscall(unsigned int vcpu, void *udata)
{
    VcpuSyscalls *v;
    uint64_t n = qemu_plugin_u64_get(syscalls, vcpu);
    uint64_t nr = 0;

    qemu_plugin_u64_add(syscalls, vcpu, 1);
    if (vcpu >= (unsigned)max_vcpus || n % sample_every) {
        return;
    }
    v = &vcpu_syscalls[vcpu];
    if (!v->rax) {
        return;
    }
    g_byte_array_set_size(v->buf, 0);
    if (qemu_plugin_read_register(v->rax, v->buf) < 8) {
        return;
    }
    memcpy(&nr, v->buf->data, sizeof(nr));   /* x86 is little-endian too */
    v->sampled++;
    if (nr < MAX_SYSCALL_NR) {
        v->by_nr[nr]++;
    } else {
        v->other_nr++;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);

    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
        tb, QEMU_PLUGIN_INLINE_ADD_U64, insns, n);
    if (window_us) {
        qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
            tb, QEMU_PLUGIN_INLINE_ADD_U64, tbs_since_look, 1);
        qemu_plugin_register_vcpu_tb_exec_cond_cb(
            tb, on_look, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_COND_GE,
            tbs_since_look, LOOK_EVERY_TBS, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint8_t op[2];

        qemu_plugin_register_vcpu_mem_inline_per_vcpu(
            insn, QEMU_PLUGIN_MEM_RW, QEMU_PLUGIN_INLINE_ADD_U64, mem, 1);
        if (x86_64 && qemu_plugin_insn_size(insn) == 2 &&
            qemu_plugin_insn_data(insn, op, 2) == 2 &&
            op[0] == 0x0f && op[1] == 0x05) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_syscall,
                                                   QEMU_PLUGIN_CB_R_REGS, NULL);
        }
    }
}

/* The most frequent sampled numbers, "nr:count" separated by commas. */
static char *top_syscalls(const VcpuSyscalls *v, int top)
{
    GString *s = g_string_new("");
    bool used[MAX_SYSCALL_NR] = { false };

    for (int k = 0; k < top; k++) {
        int best = -1;

        for (int nr = 0; nr < MAX_SYSCALL_NR; nr++) {
            if (!used[nr] && v->by_nr[nr] &&
                (best < 0 || v->by_nr[nr] > v->by_nr[best])) {
                best = nr;
            }
        }
        if (best < 0) {
            break;
        }
        used[best] = true;
        g_string_append_printf(s, "%s\"%d\": %" PRIu64, k ? ", " : "", best,
                               v->by_nr[best]);
    }
    return g_string_free(s, false);
}

/* ", \"window-ms\": W, \"observed\": [shares]" for complete windows, or "". */
static char *coverage_json(const VcpuCoverage *c, int64_t now_us)
{
    GString *s;
    guint complete;

    if (!window_us) {
        return g_strdup("");
    }
    complete = (now_us - start_us) / window_us;
    s = g_string_new("");
    g_string_append_printf(s, ", \"window-ms\": %" PRId64 ", \"observed\": [",
                           window_us / 1000);
    for (guint w = 0; w < complete; w++) {
        guint8 ticks = w < c->observed_ticks->len ?
                       g_array_index(c->observed_ticks, guint8, w) : 0;

        g_string_append_printf(s, "%s%.2f", w ? ", " : "",
                               (double)ticks / TICKS_PER_WINDOW);
    }
    g_string_append(s, "]");
    return g_string_free(s, false);
}

static void at_exit(qemu_plugin_id_t id, void *p)
{
    int64_t now_us = g_get_monotonic_time();
    FILE *out = out_path ? fopen(out_path, "w") : NULL;

    if (out_path && !out) {
        g_autofree char *msg = g_strdup_printf("mixedvm plugin: cannot write %s\n",
                                               out_path);
        qemu_plugin_outs(msg);
    }
    for (int i = 0; i < qemu_plugin_num_vcpus() && i < max_vcpus; i++) {
        const VcpuSyscalls *v = &vcpu_syscalls[i];
        g_autofree char *top = top_syscalls(v, 8);
        g_autofree char *coverage = coverage_json(&vcpu_coverage[i], now_us);
        g_autofree char *line = g_strdup_printf(
            "{\"vcpu\": %d, \"insns\": %" PRIu64 ", \"mem\": %" PRIu64
            ", \"syscalls\": %" PRIu64 ", \"sampled\": %" PRIu64
            ", \"other-nr\": %" PRIu64 ", \"top\": {%s}%s}\n",
            i, qemu_plugin_u64_get(insns, i), qemu_plugin_u64_get(mem, i),
            qemu_plugin_u64_get(syscalls, i), v->sampled, v->other_nr, top,
            coverage);

        if (out) {
            fputs(line, out);
        } else {
            qemu_plugin_outs(line);
        }
    }
    if (out) {
        fclose(out);
    }
    qemu_plugin_scoreboard_free(counts);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);

        if (g_strv_length(kv) == 2 && !strcmp(kv[0], "sample")) {
            char *end;

            sample_every = g_ascii_strtoull(kv[1], &end, 10);
            if (*end || !sample_every) {
                fprintf(stderr, "mixedvm plugin: sample=%s: want a count >= 1\n",
                        kv[1]);
                return -1;
            }
        } else if (g_strv_length(kv) == 2 && !strcmp(kv[0], "window-ms")) {
            char *end;
            guint64 ms = g_ascii_strtoull(kv[1], &end, 10);

            if (*end || ms < TICKS_PER_WINDOW || ms > 3600 * 1000) {
                fprintf(stderr, "mixedvm plugin: window-ms=%s: want %d to "
                        "3600000 ms\n", kv[1], TICKS_PER_WINDOW);
                return -1;
            }
            window_us = ms * 1000;
            tick_us = window_us / TICKS_PER_WINDOW;
        } else if (g_strv_length(kv) == 2 && !strcmp(kv[0], "out")) {
            out_path = g_strdup(kv[1]);
        } else {
            fprintf(stderr, "mixedvm plugin: unknown option '%s' "
                    "(known: sample=N, window-ms=W, out=FILE)\n", argv[i]);
            return -1;
        }
    }
    if (!info->system_emulation) {
        fprintf(stderr, "mixedvm plugin: system emulation only\n");
        return -1;
    }
    x86_64 = !strcmp(info->target_name, "x86_64");
    max_vcpus = info->system.max_vcpus;
    vcpu_syscalls = g_new0(VcpuSyscalls, max_vcpus);
    vcpu_coverage = g_new0(VcpuCoverage, max_vcpus);
    start_us = g_get_monotonic_time();
    counts = qemu_plugin_scoreboard_new(sizeof(VcpuCounts));
    insns = qemu_plugin_scoreboard_u64_in_struct(counts, VcpuCounts, insns);
    mem = qemu_plugin_scoreboard_u64_in_struct(counts, VcpuCounts, mem);
    syscalls = qemu_plugin_scoreboard_u64_in_struct(counts, VcpuCounts, syscalls);
    tbs_since_look = qemu_plugin_scoreboard_u64_in_struct(counts, VcpuCounts,
                                                          tbs_since_look);
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
