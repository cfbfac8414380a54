/* insncount: torchlet's QEMU TCG plugin: the exact number of guest instructions executed.
 *
 * Why: QEMU does not emulate the Cortex-M DWT cycle counter, and Debian ships none of QEMU's
 * example plugins, so the firmware's repeatable speed figure is counted here. `torchlet emulate`
 * loads it with `-plugin libinsncount.so,mark=<address of torchlet_inference_mark>`: each time
 * the instruction at `mark` executes, the running count is printed ("insncount: mark K
 * insns=N"; with `-d plugin -D FILE` into FILE); the firmware calls the marker right before and
 * right after each inference, so the difference of two consecutive marks is one inference.
 * At exit: "insncount: total insns=N marks=K".
 *
 * Build: tools/qemu-plugin/build.sh OUT.so (QEMU >= 9 plugin API; -DQEMU_PLUGIN_API_V1 for
 * QEMU 4.2 .. 8.x, which the script picks from `qemu-system-arm --version`).
 * The declarations follow QEMU's public plugin API (include/qemu/qemu-plugin.h), typed by hand
 * so that no QEMU source or header is needed. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t {
    const char *target_name;
    struct { int min; int cur; } version;
    bool system_emulation;
    union { struct { int smp_vcpus; int max_vcpus; } system; };
} qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
struct qemu_plugin_scoreboard;
typedef struct { struct qemu_plugin_scoreboard *score; size_t offset; } qemu_plugin_u64;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64, QEMU_PLUGIN_INLINE_STORE_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int, void *);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t, void *);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, qemu_plugin_vcpu_tb_trans_cb_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(struct qemu_plugin_insn *, enum qemu_plugin_op, qemu_plugin_u64, uint64_t);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *, qemu_plugin_vcpu_udata_cb_t, enum qemu_plugin_cb_flags, void *);
struct qemu_plugin_scoreboard *qemu_plugin_scoreboard_new(size_t);
uint64_t qemu_plugin_u64_sum(qemu_plugin_u64);
uint64_t qemu_plugin_u64_get(qemu_plugin_u64, unsigned int);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, qemu_plugin_udata_cb_t, void *);
void qemu_plugin_outs(const char *);

#ifdef QEMU_PLUGIN_API_V1   /* QEMU 4.2 .. 8.x (e.g. Debian bookworm's 7.2): plain-pointer inline counter */
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *, enum qemu_plugin_op, void *, uint64_t);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
static uint64_t count_v1;
#define COUNT_ADD(insn) qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &count_v1, 1)
#define COUNT_GET(vcpu) ((void)(vcpu), count_v1)
#define COUNT_SUM() count_v1
#define COUNT_INIT() ((void)0)
#else                        /* QEMU >= 9.0 (e.g. bookworm-backports' 10.0): per-vCPU scoreboard */
__attribute__((visibility("default"))) int qemu_plugin_version = 2;
static qemu_plugin_u64 count;
#define COUNT_ADD(insn) qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(insn, QEMU_PLUGIN_INLINE_ADD_U64, count, 1)
#define COUNT_GET(vcpu) qemu_plugin_u64_get(count, vcpu)
#define COUNT_SUM() qemu_plugin_u64_sum(count)
#define COUNT_INIT() (count = (qemu_plugin_u64){ qemu_plugin_scoreboard_new(sizeof(uint64_t)), 0 })
#endif
static uint64_t mark;      /* guest address of the marker function's first instruction, 0 = none */
static unsigned marks;

static void out(const char *fmt, uint64_t a, uint64_t b) {
    char buf[128];
    snprintf(buf, sizeof buf, fmt, a, b);
    qemu_plugin_outs(buf);
}

static void on_mark(unsigned int vcpu, void *u) {
    (void)u;
    /* the inline add for this insn has not run yet when the cb runs: count = insns before it */
    out("insncount: mark %" PRIu64 " insns=%" PRIu64 "\n", ++marks, COUNT_GET(vcpu));
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (mark && qemu_plugin_insn_vaddr(insn) == mark)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        COUNT_ADD(insn);
    }
}

static void at_exit(qemu_plugin_id_t id, void *u) {
    (void)id; (void)u;
    out("insncount: total insns=%" PRIu64 " marks=%" PRIu64 "\n", COUNT_SUM(), marks);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "mark=", 5) == 0) mark = strtoull(argv[i] + 5, NULL, 0) & ~1ull; /* drop Thumb bit */
    COUNT_INIT();
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
