"""MLP connector from vision features to LLM input embeddings."""

from torch import nn


def build_connector(vision_hidden_size, llm_hidden_size):
    """Linear -> GELU -> Linear with bias, as VideoLLM-online (module names 0 and 2).

    The names matter: the released adapter stores it as ``connector.0`` / ``connector.2``.
    """
    return nn.Sequential(
        nn.Linear(vision_hidden_size, llm_hidden_size, bias=True),
        nn.GELU(),
        nn.Linear(llm_hidden_size, llm_hidden_size, bias=True),
    )
