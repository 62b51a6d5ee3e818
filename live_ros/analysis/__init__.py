"""Error analysis: what the frame tokens carry (probe.py), what the LLM reads (slots.py)."""


def analysis_run(parser, argv=None):
    """Add the options every analysis has (--threads, --out), parse, set the threads."""
    parser.add_argument('--threads', type=int, default=None, help='torch threads')
    parser.add_argument('--out', default=None, help='write the result as JSON here')
    args = parser.parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    return args
