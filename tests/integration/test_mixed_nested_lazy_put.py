"""The move-path candidates x-lazy-put and x-sync-regs, on an emulated AMD-V host.

A move into KVM puts the vCPU's whole state, eight state ioctls, though TCG often changed
little of it. Under x-lazy-put=on (patch 0019), what KVM holds is recorded right after
the move out of KVM, and the put skips every ioctl whose payload did not change. This
runs the same guest twice on tools/nested_amdv.py's host, x-lazy-put off and on, each
with QMP flips every few seconds, and asserts:
- in both, selfcheck and torture atomics and ptchurn pass, and L2 exits cleanly (the
  candidate keeps the guest correct while it moves);
- the moves into KVM that were traced (three looks' worth, counted as
  bench/move_latency.py counts them: a vCPU's ioctls besides KVM_RUN since its previous
  move) take at most 5 ioctls at the median with the candidate, where the default takes
  at least 10 (8 for the put, 3 for the KVM TLB flush every entry needs on this kind of
  host): the default run is the negative control;
- the moves out of KVM take as many as before (the get is not changed).
A third run adds x-sync-regs=on (patch 0020: registers, segments and events of a get from
kvm_run, registers of a put through it) and asserts the same guest checks, moves out of
KVM with at least 3 ioctls fewer than the default at the median (events, registers and
segments come from kvm_run), and moves into KVM with no put ioctl left at the median
(at most the 3 of the flush).
"""
import sys

from mixedvm_testlib import ROOT, check, run

sys.path.insert(0, f"{ROOT}/tools")
sys.path.insert(0, f"{ROOT}/bench")
import move_latency  # noqa: E402
import nested_amdv  # noqa: E402

CMD = ("selfcheck --scale 0.05; torture --seconds 20 atomics ptchurn; "
       "torture --seconds 5 atomics ptchurn")
EVENTS = ["kvm_vcpu_ioctl", "mixed_move", "kvm_set_user_memory", "mixed_code_sync"]


def one(accel):
    res = nested_amdv.run_nested(CMD, smp=1, accel=accel, minutes=30, every=5, mover=True,
                                 on_look=nested_amdv.trace_for_looks(EVENTS))
    counts = move_latency.move_counts(res["l1_serial"], {
        "mixed_move": move_latency.MOVE, "mixed_code_sync": move_latency.SYNC,
        **move_latency.kvm_events()})
    l2 = res["l2_serial"]
    print(f"  {accel}: logs in {res['log_dir']}; {res['qmp_moves']} QMP flips; counts {counts}")
    for line in l2.splitlines():
        if "SELFCHECK" in line or "TORTURE" in line:
            print("    L2: " + line.strip()[:150])
    check(not res["timed_out"], f"{accel}: the nested run did not finish in 30 minutes; "
          "L2's serial log ends with:\n" + l2[-1500:])
    check("SELFCHECK PASS" in l2 and l2.count("TORTURE PASS") == 2,
          f"{accel}: selfcheck or a torture run failed")
    check(res["qmp_moves"] >= 5, f"{accel}: only {res['qmp_moves']} QMP flips")
    check(all(counts.get(d, {}).get("moves", 0) >= 50 for d in ("kvm", "tcg")),
          f"{accel}: fewer than 50 traced moves each way: {counts}")
    nested_amdv.check_clean_end(res, check)
    return counts


def test(guests):
    off = one("mixed")
    on = one("mixed,x-lazy-put=on")
    check(off["kvm"]["ioctls_p50"] >= 10,
          f"the default put no longer takes its 8 state ioctls (+3 for the flush): {off}")
    check(on["kvm"]["ioctls_p50"] <= 5,
          f"x-lazy-put=on still took {on['kvm']['ioctls_p50']} ioctls per move into KVM "
          f"at the median (default: {off['kvm']['ioctls_p50']})")
    check(on["tcg"]["ioctls_p50"] == off["tcg"]["ioctls_p50"],
          f"the get changed: {on['tcg']} against {off['tcg']}")
    sync = one("mixed,x-lazy-put=on,x-sync-regs=on")
    check(sync["tcg"]["ioctls_p50"] <= off["tcg"]["ioctls_p50"] - 3,
          f"x-sync-regs=on: moves out of KVM took {sync['tcg']['ioctls_p50']} ioctls at the "
          f"median, the default {off['tcg']['ioctls_p50']}: events, registers and segments "
          "should come from kvm_run")
    check(sync["kvm"]["ioctls_p50"] <= 3,
          f"x-sync-regs=on with x-lazy-put=on: moves into KVM took "
          f"{sync['kvm']['ioctls_p50']} ioctls at the median; only the flush's 3 should be left")


run(test)
