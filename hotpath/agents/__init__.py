"""Agent processes that run against a live engine: synthetic order flow (``flow``) and the demo market maker
(``maker``). Each is a module runnable as ``python -m hotpath.agents.NAME --prefix RUN --client ID
--symbol SYM``; the launcher (``proptrade up``) starts them from its config."""
