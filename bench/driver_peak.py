"""driver_peak.py - the driver's view of device memory for the diffusers benchmark scripts: the peak of
(total - free) bytes from cudaMemGetInfo, sampled every 5 ms by a thread."""
import threading, time

import torch


class DriverPeak:
    """Peak of (total - free) device bytes, sampled every 5 ms from construction until close()."""

    def __init__(self):
        self.peak, self.stop = 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            free, total = torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(0.005)

    def close(self):
        self.stop = True
        self.t.join()
        return self.peak


def sampler_for(rep):
    """A DriverPeak for runs 1 and 2, None from run 3 on: the thread takes the GIL every 5 ms, which slows
    a host-bound pipeline, so the runs without it are the steady-state times to compare."""
    return DriverPeak() if rep <= 2 else None


def column(drv, base):
    """The driver-peak column of a run: MiB above base, or "-" where no sampler ran (closes drv)."""
    return f"{(drv.close() - base) / 2**20:>9.1f}" if drv else f"{'-':>9}"
