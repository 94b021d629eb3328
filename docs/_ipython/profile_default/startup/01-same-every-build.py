"""Every notebook kernel of the build writes a cell's output the same way in every build.

Two things in the kernel would otherwise change from build to build:

- A traceback, or JAX's "The error occurred while tracing the function f at ...", names the
  file a cell was compiled from. The kernel's compiler names it after a temporary folder and
  its process id (``/tmp/ipykernel_25160/1122800513.py``). IPython's own compiler names it
  after the cell's number and a digest of its code (``<ipython-input-3-...>``, which
  tracebacks show as ``Cell In[3]``): the same in every build, and for a reader who runs the
  downloaded notebook from the top.
- The kernel sends what a cell prints in pieces, one every 0.2 s, cut wherever the clock
  falls, even inside a line; myst-nb then strips the end of each piece and adds a newline, so
  ``print("gradient:", value)`` came out on one line in one build and on two in the next. Sent
  when the cell ends (or when the cell itself flushes), the output has the same lines always.
"""


def _same_output_every_build(shell):
    import sys

    from IPython.core.compilerop import CachingCompiler

    shell.compile = CachingCompiler()
    for stream in (sys.stdout, sys.stderr):
        # A day: in practice the output goes when the cell ends, where the kernel flushes it.
        stream.flush_interval = 24 * 3600


# Like the other startup file, this leaves no name in the cells' namespace.
_same_output_every_build(get_ipython())  # noqa: F821 (IPython's global)
del _same_output_every_build
