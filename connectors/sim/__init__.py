"""The simulated SMSC's modules; import the public names from ``connectors.smsc_sim``.

Why a package: the SMSC's parts are read and changed separately (settings, receipts, MO
building, the server, the HTTP control API) and together outgrow one module.
"""
