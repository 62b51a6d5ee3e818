"""The command lines: live-train, live-eval, live-infer, live-bench."""
