"""Other estimators run on memwall's published runs, side by side with memwall's backtest. Each
peer lives in a virtual environment of its own (``make peers``), never in memwall's: the
requests and the comparison are built here, in memwall's environment, and a peer's runner is
the only module that imports the peer."""
