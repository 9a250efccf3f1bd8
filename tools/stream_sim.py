#!/usr/bin/env python3
"""stream_sim.py - a deterministic simulator of block streaming (src/model/stream.c) on a Flux-shaped
bf16 transformer at 1024x1024, for choosing the stream's rule (issue 12). Not part of CI.

Events, as the CUDA backend orders them:
  - the host enqueues instantly; it waits only for a synchronous load (its copy done) and at the end of
    each call (the output's download waits for the compute);
  - compute stream: unit k starts after the compute before it and, if its upload is pending, that upload;
  - copy stream, one copy at a time: an upload issued while unit k is acquired waits for the compute
    enqueued so far (units < k: cuda_alloc.c records compute_mark before each copy), or, in the variant
    'slot_wait', only for the compute that last used the memory it overwrites (the victim's last unit).
Per-unit compute is proportional to its FLOPs, scaled so one call computes in STEP_ALL seconds.

Result (2026, issue 12): with the copy rate the H100 reached behind compute (49 GB/s, 90% of the pinned
54.6) the current rule simulates 0.288 / 0.346 / 0.422 s per step under 12 / 8 / 4 GiB against the measured
0.311 / 0.353 / 0.420 s; the copy stream is busy 88 / 99 / 99% of the step: the step is the transfer of the
bytes that do not fit. No alternative (more slots for fewer sticky units, sticky units by size or by bytes,
filling every free slot, uploads that wait only for their slot's last compute, lookahead into the next
call) gains more than 3% there, nor more than 5.6% anywhere on a sweep of 3.5-14.5 GB of weights (9.0% at
10.5 GB at 54.6 GB/s), even choosing the best variant per budget with hindsight; the rule stays.

Usage: tools/stream_sim.py [GB/s]     (prints the calibration and the comparison tables; the copy rate
                                      defaults to the 54.6 GB/s pinned H2D measured on the H100)
"""
import itertools
import sys

GB = 1e9
GIB = 1 << 30
BW = (float(sys.argv[1]) if len(sys.argv) > 1 else 54.6) * GB  # copy rate
STEP_ALL = 0.218  # s, all resident, 1024x1024
MEASURED = {12: 0.311, 8: 0.353, 4: 0.420}  # s per step under stream, H100

# Flux dev shapes
C, MLP, T_IMG, T_TXT = 3072, 4 * 3072, 4096, 512
T = T_IMG + T_TXT
B = 2  # bytes per bf16 weight


def double_block():
    per_stream = 3 * C * C + C * C + 2 * C * MLP  # qkv, out, mlp (img and txt each)
    mod = 2 * (C * 6 * C)
    params = 2 * per_stream + mod
    flops = 2 * per_stream * (T_IMG + T_TXT) + 4 * T * C * T + 2 * mod
    return params * B, flops


def single_block():
    lin1 = C * (3 * C + MLP)
    lin2 = (C + MLP) * C
    mod = C * 3 * C
    params = lin1 + lin2 + mod
    flops = 2 * (lin1 + lin2) * T + 4 * T * C * T + 2 * mod
    return params * B, flops


def flux_units():
    d, s = double_block(), single_block()
    units = [d] * 19 + [s] * 38
    total = sum(f for _, f in units)
    scale = STEP_ALL / total
    return [(b, f * scale) for b, f in units]


REST = int(62e6 * B)  # embedders, norm_out, proj_out


def sticky_even(k, n, ns):
    return ((k + 1) * ns + n - 1) // n > (k * ns + n - 1) // n


class Sim:
    """stream.c's state machine with a timing model. sticky: set of units; slots: cycling units resident at
    most; depth: uploads issued per acquire (1: stream.c); wrap: the lookahead continues into the next
    call's units; slot_wait: an upload waits only for the last compute of the unit it replaces."""

    def __init__(self, units, sticky, slots, depth=1, wrap=False, slot_wait=False, lookahead=True):
        self.u, self.n = units, len(units)
        self.sticky = [k in sticky for k in range(self.n)]
        self.slots, self.depth, self.wrap, self.slot_wait, self.lookahead = slots, depth, wrap, slot_wait, lookahead
        self.res = [False] * self.n
        self.used = [False] * self.n
        self.held = [False] * self.n
        self.ready = [None] * self.n  # copy end of a pending upload
        self.last_end = [0.0] * self.n  # end of the unit's last compute
        self.n_cyc = 0
        self.th = self.ce = self.cf = 0.0
        self.cyc_bytes = 0
        self.peak_cyc_bytes = 0
        self.copy_busy = 0.0

    def victim(self, at, unused_too):
        best, bd = -1, -1
        for k in range(self.n):
            if not self.res[k] or self.sticky[k] or self.held[k] or (not self.used[k] and not unused_too):
                continue
            d = self.n - at + k if k < at else k - at
            if d > bd:
                best, bd = k, d
        return best

    def evict(self, k):
        self.res[k] = False
        self.ready[k] = None
        if not self.sticky[k]:
            self.n_cyc -= 1
            self.cyc_bytes -= self.u[k][0]
        return self.last_end[k]

    def make_room(self, k, unused_too):
        if self.sticky[k]:
            return True, 0.0
        freed = 0.0
        while self.n_cyc >= self.slots:
            v = self.victim(k, unused_too)
            if v < 0:
                return False, 0.0
            freed = max(freed, self.evict(v))
        return True, freed

    def upload(self, k, freed):
        wait = freed if self.slot_wait else self.ce  # the compute enqueued so far
        start = max(self.th, self.cf, wait)
        dur = self.u[k][0] / BW
        self.cf = start + dur
        self.copy_busy += dur
        self.res[k] = True
        self.used[k] = False
        if not self.sticky[k]:
            self.n_cyc += 1
            self.cyc_bytes += self.u[k][0]
            self.peak_cyc_bytes = max(self.peak_cyc_bytes, self.cyc_bytes)
        return self.cf

    def next_missing(self, k):
        for i in range(1, self.n if self.wrap else self.n - k):
            j = (k + i) % self.n
            if not self.res[j]:
                return j
        return -1

    def acquire(self, k):
        if not self.res[k]:
            ok, freed = self.make_room(k, True)
            assert ok
            self.th = self.upload(k, freed)  # synchronous: the host waits for it
        self.held[k] = self.used[k] = True
        if self.lookahead:
            for _ in range(self.depth):
                j = self.next_missing(k)
                if j < 0:
                    break
                ok, freed = self.make_room(j, False)
                if not ok:
                    break
                self.ready[j] = self.upload(j, freed)
        start = max(self.th, self.ce, self.ready[k] or 0.0)
        self.ready[k] = None
        self.ce = start + self.u[k][1]
        self.last_end[k] = self.ce
        self.held[k] = False

    def call(self):
        t0 = self.th
        for k in range(self.n):
            self.acquire(k)
        self.th = max(self.th, self.ce)  # the output's download
        return self.th - t0

    def steady(self, calls=4):
        for _ in range(calls - 1):
            self.call()
        b0 = self.copy_busy
        t = self.call()
        return t, self.copy_busy - b0


def held(units, sticky, slots):
    cyc = [units[k][0] for k in range(len(units)) if k not in sticky]
    return REST + sum(units[k][0] for k in sticky) + slots * (max(cyc) if cyc else 0)


def read_per_call(units, sticky):
    return sum(units[k][0] for k in range(len(units)) if k not in sticky)


def even_sticky(n, ns):
    return {k for k in range(n) if sticky_even(k, n, ns)}


def size_sticky(units, ns):
    """the ns largest units sticky, spread evenly among those of their size (deterministic)"""
    n = len(units)
    chosen = set()
    sizes = sorted({b for b, _ in units}, reverse=True)
    left = ns
    for sz in sizes:
        group = [k for k in range(n) if units[k][0] == sz]
        take = min(left, len(group))
        chosen |= {group[i] for i in range(len(group)) if sticky_even(i, len(group), take)}
        left -= take
    assert len(chosen) == min(ns, n), (len(chosen), ns)
    return chosen


def bytes_sticky(units, wbudget, slots):
    """the sticky set of most bytes that fits (a knapsack over the unit sizes, each size's units spread
    evenly among themselves), slots sized for the largest unit that still cycles"""
    n = len(units)
    sizes = sorted({b for b, _ in units}, reverse=True)
    groups = [[k for k in range(n) if units[k][0] == sz] for sz in sizes]
    best = None
    for counts in itertools.product(*[range(len(g) + 1) for g in groups]):
        cyc = [sz for sz, g, c in zip(sizes, groups, counts) if c < len(g)]
        h = REST + sum(sz * c for sz, c in zip(sizes, counts)) + slots * (max(cyc) if cyc else 0)
        if h > wbudget or (slots and not cyc):
            continue
        key = (sum(sz * c for sz, c in zip(sizes, counts)), sum(counts))
        if best is None or key > best[0]:
            best = (key, counts)
    if best is None:
        return None
    st = set()
    for g, c in zip(groups, best[1]):
        st |= {g[i] for i in range(len(g)) if sticky_even(i, len(g), c)}
    return st


def best_config(units, wbudget, rule, slots):
    """the most sticky units (rule: 'even' or 'size'; 'bytes': the most sticky bytes) with `slots` slots
    whose held bytes fit wbudget"""
    n = len(units)
    if rule == "bytes":
        return bytes_sticky(units, wbudget, slots)
    for ns in range(n - slots, -1, -1):
        st = even_sticky(n, ns) if rule == "even" else size_sticky(units, ns)
        if held(units, st, slots) <= wbudget:
            return st
    return None


def simulate(units, st, slots, **kw):
    s = Sim(units, st, slots, **kw)
    t, busy = s.steady()
    return t, busy, s.peak_cyc_bytes


def main():
    units = flux_units()
    n = len(units)
    print("copy rate %.1f GB/s" % (BW / GB))
    print("units: %d double %.3f GB %.2f ms, %d single %.3f GB %.2f ms; rest %.3f GB" %
          (19, units[0][0] / GB, units[0][1] * 1e3, 38, units[-1][0] / GB, units[-1][1] * 1e3, REST / GB))
    total = sum(b for b, _ in units)
    print("all units %.2f GB; transfer of all %.3f s; compute %.3f s" % (total / GB, total / BW, STEP_ALL))

    # calibration: the planner's window (current rule) whose transfer floor matches the measurement's
    floors = {12: 0.224, 8: 0.310, 4: 0.379}  # the measurement's, at 54.6 GB/s
    print("\ncalibration (current rule: even sticky, 2 slots, lookahead 1, upload after all compute so far)")
    print("  %4s %6s %8s %9s %9s %9s" % ("W", "sticky", "held GB", "read GB", "floor s", "sim s"))
    by_w = {}
    for w in range(3, n):
        st = even_sticky(n, w - 2)
        h = held(units, st, 2)
        r = read_per_call(units, st)
        by_w[w] = (st, h, r)
    other = {}
    for gib, fl in floors.items():
        w = min(by_w, key=lambda w: abs(by_w[w][2] / (54.6 * GB) - fl))
        st, h, r = by_w[w]
        t, _, _ = simulate(units, st, 2)
        # the budget left for weights: between this window's held bytes and the next one's
        nxt = by_w[w + 1][1] if w + 1 in by_w else h
        other[gib] = (h + nxt) / 2  # weights budget taken midway
        print("  %4d %6d %8.2f %9.2f %9.3f %9.3f   (%d GiB: measured %.3f s, floor %.3f s)" %
              (w, len(st), h / GB, r / GB, r / BW, t, gib, MEASURED[gib], fl))
    print("  weights budget used below (midway to the next window): " +
          ", ".join("%d GiB -> %.2f GB" % (g, other[g] / GB) for g in sorted(other, reverse=True)))

    variants = [
        ("current: even sticky, 2 slots, 1 upload/acquire", "even", [2], {}),
        ("even sticky, best of 2..8 slots, 1 upload/acquire", "even", range(2, 9), {}),
        ("even sticky, best of 2..8 slots, fill every slot", "even", range(2, 9), {"depth": 8}),
        ("size sticky, 2 slots, 1 upload/acquire", "size", [2], {}),
        ("size sticky, best of 2..12 slots, 1 upload/acquire", "size", range(2, 13), {}),
        ("size sticky, best of 2..12 slots, fill every slot", "size", range(2, 13), {"depth": 12}),
        ("size sticky, best slots, fill, wrap into next call", "size", range(2, 13), {"depth": 12, "wrap": True}),
        ("bytes sticky, 2 slots, 1 upload/acquire", "bytes", [2], {}),
        ("bytes sticky, best of 2..12 slots, fill every slot", "bytes", range(2, 13), {"depth": 12}),
        ("bytes sticky, best slots, fill, wrap, slot_wait", "bytes", range(2, 13),
         {"depth": 12, "wrap": True, "slot_wait": True}),
        ("even sticky, 2 slots, wrap into next call", "even", [2], {"wrap": True}),
        ("even sticky, best slots, fill, wrap, slot_wait", "even", range(2, 9),
         {"depth": 8, "wrap": True, "slot_wait": True}),
        ("even sticky, 2 slots, slot_wait", "even", [2], {"slot_wait": True}),
        ("size sticky, best slots, fill, slot_wait", "size", range(2, 13), {"depth": 12, "slot_wait": True}),
        ("size sticky, best slots, fill, wrap, slot_wait", "size", range(2, 13),
         {"depth": 12, "wrap": True, "slot_wait": True}),
    ]
    print("\nsimulated step time (s) per weights budget; [slots, sticky, read GB, floor s, copy busy %]")
    run_variants(units, variants, other)

    # a sweep of weights budgets: the best of all variants against the current rule
    sweep = {g: g * GB for g in [3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5, 12.5, 13.5, 14.5]}
    print("\nsweep over weights budgets (GB): the current rule and the best variant there")
    for g, wb in sweep.items():
        res = []
        for name, rule, slot_range, kw in variants:
            best = None
            for sl in slot_range:
                st = best_config(units, wb, rule, sl)
                if st is None:
                    continue
                t, _, _ = simulate(units, st, sl, **kw)
                if best is None or t < best[0] - 1e-12:
                    best = (t, sl)
            if best:
                res.append((best[0], name, best[1]))
        cur = res[0][0]
        t, name, sl = min(res)
        print("  %5.1f GB: current %.3f s, best %.3f s (%+.1f%%): %s, %d slots" % (g, cur, t, 100 * (t / cur - 1), name, sl))


def run_variants(units, variants, other):
    base = {}
    for name, rule, slot_range, kw in variants:
        row = []
        for gib in sorted(other, reverse=True):
            wb = other[gib]
            best = None
            for sl in slot_range:
                st = best_config(units, wb, rule, sl)
                if st is None:
                    continue
                t, busy, _ = simulate(units, st, sl, **kw)
                if best is None or t < best[0] - 1e-12:
                    best = (t, sl, len(st), read_per_call(units, st), busy)
            if name.startswith("current"):
                base[gib] = best[0]
            t, sl, ns, r, busy = best
            row.append("%d GiB %.3f (%+.0f%%) [%d, %d, %.1f, %.3f, %.0f%%]" %
                       (gib, t, 100 * (t / base[gib] - 1), sl, ns, r / GB, r / BW, 100 * busy / t))
        print("  %-52s %s" % (name, "  ".join(row)))


if __name__ == "__main__":
    main()
