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
