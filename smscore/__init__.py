"""smscore."""


def version() -> str:
    """The installed package's version (``smsgw --version``, ``smsgw_build_info``)."""
    from importlib.metadata import PackageNotFoundError, version as installed

    try:
        return installed("smsgw")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"
