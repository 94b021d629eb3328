# The build's kernels keep no input history: nothing is written into the repository.
c.HistoryManager.enabled = False  # noqa: F821 (the config object IPython provides)
# The kernel's own log says only that it listens on local TCP ports without encryption, as
# every locally started kernel does; at the default level that line is printed once per page
# into the build's output. Errors of the kernel still show. (A cell's warnings are not the
# kernel's log: they are outputs of the cell, and deprecations among them fail the build.)
c.IPKernelApp.log_level = "ERROR"  # noqa: F821
