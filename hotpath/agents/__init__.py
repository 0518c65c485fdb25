"""Agent processes that run against a live engine: synthetic order flow (``flow``). It is a module runnable as
``python -m hotpath.agents.flow --prefix RUN --client ID --symbol SYM``; the launcher (``proptrade up``) starts
it from its config. The market makers are strategies (``strategies/``; the launcher runs them as
``strategies.agent``)."""
