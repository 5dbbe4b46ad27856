"""Evaluation: zero-shot classification, retrieval, metrics and plots."""


def evaluate(*args, **kwargs):
    from .run import evaluate as run

    return run(*args, **kwargs)
