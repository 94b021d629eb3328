"""Every notebook kernel of the build runs this first: a deprecated API fails its cell.

conf.py points IPYTHONDIR at docs/_ipython, so the kernels that myst-nb starts read this
profile. A DeprecationWarning, FutureWarning or PendingDeprecationWarning raised while a cell
runs becomes an error, and the build fails naming the page and the cell. (IPython itself only
shows DeprecationWarnings raised in ``__main__``, and hides the ones raised inside libraries.)
"""


def _fail_on_deprecations(shell):
    """Make the deprecation warnings errors, and show each with a note on what to do."""
    import warnings

    deprecations = (DeprecationWarning, FutureWarning, PendingDeprecationWarning)
    what_to_do = (
        "This cell uses a deprecated API: switch it to the API the warning names. To show the "
        "warning on purpose, tag the cell `shows-warning`, make the call inside "
        "`with warnings.catch_warnings(record=True) as caught:` after "
        '`warnings.simplefilter("always")`, and print what `caught` holds (see the README).'
    )
    for category in deprecations:
        warnings.filterwarnings("error", category=category)

    # ipykernel 7.4 warns about its own IPythonKernel.do_shutdown when the kernel shuts down,
    # after the page's last cell; as an error it breaks the shutdown. It is not the page's to fix.
    warnings.filterwarnings(
        "ignore",
        message="For consistency across implementations, it is recommended that `do_shutdown`",
        category=PendingDeprecationWarning,
        module="ipykernel.kernelbase",
    )

    def say_what_to_do(shell, etype, value, tb, tb_offset=None):
        if what_to_do not in getattr(value, "__notes__", []):
            value.add_note(what_to_do)
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)

    shell.set_custom_exc(deprecations, say_what_to_do)


# This file runs in the cells' namespace: it leaves no name there, so a page that forgets an
# import fails here as it would for a reader running the downloaded notebook.
_fail_on_deprecations(get_ipython())  # noqa: F821 (IPython's global)
del _fail_on_deprecations
