"""smscore."""

from smscore.compiled import install as _install_compiled

# The hot modules from their Cython builds, where one was made for the source as it is
# (smscore.compiled); first thing, so that the modules imported after it are found there.
_install_compiled()


def version() -> str:
    """The installed package's version (``smsgw --version``, ``smsgw_build_info``)."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("smsgw")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
