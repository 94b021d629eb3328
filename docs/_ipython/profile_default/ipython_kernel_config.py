# The build's kernels keep no input history: nothing is written into the repository.
c.HistoryManager.enabled = False  # noqa: F821 (the config object IPython provides)
