"""Peak memory while a block runs: process RSS on a CPU, torch's allocator peak on CUDA."""

import threading


class PeakMemory:
    """Peak resident memory (CPU) or peak allocated CUDA memory while a block runs.

    RSS is sampled every 20 ms because the process-wide ``ru_maxrss`` cannot be reset between
    methods; CUDA uses torch's own peak counter.
    """

    def __init__(self, device):
        self.device = str(device)
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        import torch
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            import psutil
            proc = psutil.Process()

            def sample():
                while not self._stop.is_set():
                    self.peak_bytes = max(self.peak_bytes, proc.memory_info().rss)
                    self._stop.wait(0.02)
            self.peak_bytes = proc.memory_info().rss
            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        import torch
        if self.device.startswith('cuda'):
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
        return False

    @property
    def kind(self):
        """What the number means."""
        return 'cuda_max_allocated' if self.device.startswith('cuda') else 'process_rss'
