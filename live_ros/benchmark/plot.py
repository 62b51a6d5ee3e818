"""live-bench's figure: FPS per method, and per-frame cost over stream length."""

from live_ros.streaming.baselines import METHODS


def plot(result, path):
    """Write a PNG: FPS per method, and per-frame cost over stream length."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    methods = [m for m in METHODS if m in result['methods']]
    colours = dict(zip(METHODS, ('tab:green', 'tab:orange', 'tab:red')))  # same in every panel
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    fps = [result['methods'][m]['end_to_end_fps'] for m in methods]
    axes[0].bar(methods, fps, color=[colours[m] for m in methods])
    axes[0].set_ylabel('frames per second (encoder + LLM)')
    axes[0].set_title(f'{result["stream_seconds"]:g} s stream, {result["device"]}')
    for m in methods:
        pts = result['methods'][m].get('growth', {}).get('points', [])
        if pts:
            xs = [p['stream_minutes'] for p in pts]
            axes[1].plot(xs, [1000 * (p['frame_latency_median_s'] + p['rebuild_amortised_s'])
                              for p in pts], marker='o', label=m, color=colours[m])
            axes[2].plot(xs, [p['cache_tokens'] for p in pts], marker='o', label=m,
                         color=colours[m])
    axes[1].set_xscale('log')
    axes[1].set_xlabel('stream position (minutes at 2 fps)')
    axes[1].set_ylabel('LLM ms per frame (incl. amortised rebuild)')
    axes[1].legend()
    axes[2].set_xscale('log')
    axes[2].set_xlabel('stream position (minutes at 2 fps)')
    axes[2].set_ylabel('KV cache tokens (bounded context)')
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
