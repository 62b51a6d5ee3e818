"""live-bench on a tiny random model: all three methods run and the JSON and plot are written.

No timing is asserted (the machine is shared); only that every number the README table needs
is produced.
"""

import json

import pytest

from live_ros.cli import bench
from live_ros.testing import tiny_models


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    """Save a tiny LiveModel as a model directory, as live-bench --model takes it."""
    root = tmp_path_factory.mktemp('bench')
    model, _ = tiny_models.build_tiny_live_model(root)
    return model.save_pretrained(str(root / 'model'))


def test_bench_writes_json_and_plot(tiny_dir, tmp_path):
    """A short run writes every field of the table and a PNG."""
    out = tmp_path / 'out'
    rc = bench.main(['--model', tiny_dir, '--seconds', '4', '--question-time', '1',
                     '--growth-minutes', '0.05,0.5', '--probe-frames', '2',
                     '--max-new-tokens', '4', '--threads', '1', '--out', str(out)])
    assert rc == 0
    result = json.loads((out / 'bench.json').read_text())
    assert (out / 'bench.png').stat().st_size > 1000
    assert result['frames'] == 9 and result['encoder']['fps'] > 0
    assert set(result['methods']) == set(bench.METHODS)
    for name, run in result['methods'].items():
        for key in ('end_to_end_fps', 'llm_fps', 'frame_latency_p50_s', 'frame_latency_p99_s',
                    'query_ttft_s', 'peak_memory_bytes', 'cache_tokens_max'):
            assert run[key] is not None and run[key] > 0, (name, key)
        assert run['query']['text'] is not None
        points = run['growth']['points']
        assert [p['stream_minutes'] for p in points] == [0.05, 0.5]
        assert all(p['cache_tokens'] > 0 and p['fps'] > 0 for p in points)


def test_bench_cameras_reports_each_camera(tiny_dir, tmp_path, capsys):
    """--cameras 1,2: every camera's frames are offered in real time and counted."""
    out = tmp_path / 'cams'
    assert bench.main(['--model', tiny_dir, '--cameras', '1,2', '--seconds', '2',
                       '--camera-fps', '4', '--threads', '1', '--out', str(out)]) == 0
    result = json.loads((out / 'bench_cameras.json').read_text())
    assert [r['cameras'] for r in result['runs']] == [1, 2]
    for run in result['runs']:
        assert run['completed'] and len(run['per_camera']) == run['cameras']
        for cam in run['per_camera']:
            assert cam['frames_offered'] == 9 and cam['errors'] == 0
            assert cam['frames_decoded'] + cam['frames_dropped'] == 9
            assert cam['frames_decoded'] >= 1 and cam['lag_max_s'] is not None
        assert run['total_fps'] == pytest.approx(
            sum(c['frames_decoded'] for c in run['per_camera']) / 2)
    assert [r['batched'] for r in result['runs']] == [False, True]   # rows: 2 cameras, fast
    assert '| 2 x 4 fps, batched (' in capsys.readouterr().out


def test_cache_at_follows_the_bound():
    """The bounded-context arithmetic: grow to the bound, then cycle above the rebuild size."""
    from live_ros.benchmark.growth import cache_at
    from live_ros.benchmark.streams import percentile
    assert cache_at(10, 11, 40, 1000, 500) == (150, 0)
    tokens, rebuilds = cache_at(1000, 11, 40, 1000, 500)
    assert 500 <= tokens <= 1000 and rebuilds > 0
    assert percentile([1, 2, 3, 4], 50) == 2 and percentile([], 50) is None


def test_gpu_script_tiny_runs_both_engines(tmp_path, monkeypatch, capsys):
    """scripts/gpu_bench_8b.py --tiny: eager and fast paths (compiled on a CPU backend)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / 'scripts' / 'gpu_bench_8b.py'
    spec = importlib.util.spec_from_file_location('gpu_bench_8b', path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setenv('OUT', str(tmp_path))
    assert script.main(['--tiny']) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith('SUMMARY '))
    summary = json.loads(line[len('SUMMARY '):])
    for key in ('live_silent_fps', 'response_tokens_per_s', 'eager_live_silent_fps', 'ttft_s',
                'per_frame_fps_llm', 'interleaved_fps_llm', 'live_pipeline_fps'):
        assert summary[key] > 0, key
    assert 'peak_gpu_memory_gb' in summary
    assert set(summary['growth_ms_per_frame']) == {'1.0', '60.0'}
    for n in (1, 2):   # the multi-camera runs: every camera's frames offered and counted
        assert summary[f'cameras_{n}_total_fps'] > 0 and summary[f'cameras_{n}_used_share'] > 0
    result = json.loads((tmp_path / 'gpu_bench_8b.json').read_text())
    assert [len(run['per_camera']) for run in result['cameras']] == [1, 2]
    assert result['lora_merged'] and result['compiled_step_lengths'] == [1, 11]
