"""What live-eval prints and draws: the metrics table and the free-running timeline."""

import os
import sys


def plot_timeline(runs, path, title=''):
    """Timeline PNG: true spontaneous turns, queries and what the model said, per stream."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(12, 0.9 * len(runs) + 1.2))
    for row, r in enumerate(runs):
        y = len(runs) - 1 - row
        tt = [t['time'] for t in r['truth']]
        pt = [s['time'] for s in r['said'] if s['query'] is None]
        qt = [a['time'] for a in r['answers']]
        ax.scatter(tt, [y + 0.15] * len(tt), marker='o', color='tab:green', s=36,
                   label='true response' if row == 0 else None)
        ax.scatter(pt, [y - 0.15] * len(pt), marker='x', color='tab:red', s=36,
                   label='model spoke' if row == 0 else None)
        ax.scatter(qt, [y] * len(qt), marker='^', color='tab:blue', s=30,
                   label='user query' if row == 0 else None)
        for i, j in r['matched']:
            ax.plot([tt[i], pt[j]], [y + 0.15, y - 0.15], color='grey', lw=0.8)
    ax.set_yticks(range(len(runs)))
    ax.set_yticklabels([os.path.basename(r['video']) for r in reversed(runs)])
    ax.set_xlabel('stream time (s)')
    ax.set_title(title or 'predicted vs true responses')
    ax.legend(loc='upper left', bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v, pct=False):
    if v is None:
        return '-'
    return f'{100 * v:.1f}%' if pct else f'{v:.3f}'


def print_table(report, file=None):
    """Print the metrics as a small table."""
    file = file or sys.stdout
    tf = report.get('teacher_forced')
    if tf and tf.get('reference'):
        ref = tf['reference']
        print('reference definitions (headline):', file=file)
        print('| format | LM-PPL | TimeDiff (s) | Fluency | LM-Correctness | dialogues |',
              file=file)
        print('|---|---|---|---|---|---|', file=file)
        print(f"| {report['format']} | {_fmt(ref['lm_ppl'])} | {_fmt(ref['time_diff'])} | "
              f"{_fmt(ref['fluency'], True)} | {_fmt(ref['lm_correctness'], True)} | "
              f"{tf['dialogues']} |", file=file)
        print('live_ros per-turn variant (response text only, query-answer rule):', file=file)
    if tf:
        print('| format | LM-PPL | TimeDiff (s) | Fluency | LM-Correctness | decision AUC '
              '| dialogues |', file=file)
        print('|---|---|---|---|---|---|---|', file=file)
        print(f"| {report['format']} | {_fmt(tf['lm_ppl'])} | {_fmt(tf['time_diff'])} | "
              f"{_fmt(tf['fluency'], True)} | {_fmt(tf['lm_correctness'], True)} | "
              f"{_fmt(tf.get('decision_auc'))} | {tf['dialogues']} |", file=file)
    fr = report.get('free_run')
    if fr:
        print('\nfree-running: ' + ', '.join(
            f'{k}={_fmt(v) if isinstance(v, float) else v}' for k, v in fr.items()), file=file)
    for name, r in (report.get('long') or {}).items():
        sm = r['summary']
        print(f"\nlong {name} (seeds {r['seeds']}): spontaneous/min {_fmt(sm['spoken_per_min'])} "
              f"vs truth {_fmt(sm['true_per_min'])} (excess {_fmt(sm['excess_per_min'])}), "
              f"longest identical run {sm['longest_identical_run']}, recall "
              f"{_fmt(sm['recall'])}, precision {_fmt(sm['precision'])}, content recall "
              f"{_fmt(sm['content_recall'])} / precision {_fmt(sm['content_precision'])}, fact "
              f"accuracy {_fmt(sm['fact_accuracy'])} / answers {_fmt(sm['answer_fact_accuracy'])}"
              f", stop obeyed {_fmt(sm['stop_obeyed'])} of {sm['stop_requests']}", file=file)
        print('  per slice: ' + ', '.join(
            f"{b['from_min']:g}-{b['to_min']:g} min {_fmt(b['spoken_per_min'])}/"
            f"{_fmt(b['true_per_min'])}" for b in sm['bins']), file=file)
    for task, r in (report.get('coin') or {}).items():
        print(f"COIN {task}: accuracy {_fmt(r['accuracy'], True)} on {r['questions']}",
              file=file)
