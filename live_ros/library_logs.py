"""Keep the libraries' load-time chatter out of a user's console.

transformers draws a "Loading weights" bar per checkpoint, peft warns about tied embeddings
the LoRA layout handles on purpose (the released adapter trains lm_head), and transformers
warns about its own deprecated internals that peft calls. None of it is actionable for
someone running the node; it stays visible at debug log level.
"""

import warnings


def quiet_library_logs():
    """Hide transformers' progress bars and info logs and peft/transformers warnings."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    for category, module in ((UserWarning, r'peft(\.|$)'),
                             (FutureWarning, r'transformers(\.|$)'),
                             (FutureWarning, r'peft(\.|$)')):
        warnings.filterwarnings('ignore', category=category, module=module)
