"""The hot path: the engine process, the shared-memory rings, the launcher and the ``proptrade`` command line."""
