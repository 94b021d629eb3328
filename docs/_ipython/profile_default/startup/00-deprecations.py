"""Every notebook kernel of the build runs this first: a deprecated API fails its cell.

conf.py points IPYTHONDIR at docs/_ipython, so the kernels that myst-nb starts read this
profile. A DeprecationWarning, FutureWarning or PendingDeprecationWarning raised while a cell
runs becomes an error, and the build fails naming the page and the cell. (IPython itself only
shows DeprecationWarnings raised in ``__main__``, and hides the ones raised inside libraries.)
"""

import warnings

DEPRECATIONS = (DeprecationWarning, FutureWarning, PendingDeprecationWarning)

WHAT_TO_DO = (
    "This cell uses a deprecated API: switch it to the API the warning names. To show the "
    "warning on purpose, tag the cell `shows-warning`, make the call inside "
    "`with warnings.catch_warnings(record=True) as caught:` after "
    '`warnings.simplefilter("always")`, and print what `caught` holds (see the README).'
)

for category in DEPRECATIONS:
    warnings.filterwarnings("error", category=category)

# ipykernel 7.4 warns about its own IPythonKernel.do_shutdown when the kernel shuts down, after
# the page's last cell; as an error it breaks the shutdown. It is not the page's to fix.
warnings.filterwarnings(
    "ignore",
    message="For consistency across implementations, it is recommended that `do_shutdown`",
    category=PendingDeprecationWarning,
    module="ipykernel.kernelbase",
)


def _say_what_to_do(shell, etype, value, tb, tb_offset=None):
    """Show the usual traceback, with a note on what to do, for a warning raised as an error."""
    if WHAT_TO_DO not in getattr(value, "__notes__", []):
        value.add_note(WHAT_TO_DO)
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


get_ipython().set_custom_exc(DEPRECATIONS, _say_what_to_do)  # noqa: F821 (IPython's global)
